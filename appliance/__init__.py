"""The ipkvm appliance service: the core (runtime, config, auth, scripting, targets), the HTTP
front end (:mod:`appliance.api`) and the command line (:mod:`appliance.cli`).
See docs/architecture.md."""

__version__ = "0.1.0"
