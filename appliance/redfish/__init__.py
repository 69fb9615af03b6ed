"""Redfish as fleet tools use it: the resources (:mod:`.documents`), the machines they stand for
and what their actions do (:mod:`.systems`), and Redfish's error bodies (:mod:`.messages`).

The HTTP side — routes, logins, the error middleware, ETags — is :mod:`appliance.api.redfish`;
docs/redfish.md describes the service.
"""
