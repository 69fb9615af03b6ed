"""Redfish errors: the ``{"error": {"code", "message", "@Message.ExtendedInfo"}}`` body with
messages of the DMTF ``Base`` registry.

Why the registry's own words and ids: clients act on ``MessageId`` (sushy retries an
``InsertMedia`` with ``TransferProtocolType`` when the error's ``RelatedProperties`` name it, and
Ironic shows ``message`` to the operator), so an error must carry the id a client looks for, with
the arguments in the places the registry gives them. Only the messages this service sends are
here (text from the Base 1.22.1 registry in shared/redfish/registries).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REGISTRY = "Base.1.22"
MESSAGE_TYPE = "#Message.v1_3_0.Message"

# MessageId → (message template, severity, resolution)
_BASE: dict[str, tuple[str, str, str]] = {
    "GeneralError": (
        "A general error has occurred.  See Resolution for information on how to resolve the "
        "error, or @Message.ExtendedInfo if Resolution is not provided.",
        "Critical",
        "None.",
    ),
    "ResourceNotFound": (
        "The requested resource of type %1 named '%2' was not found.",
        "Critical",
        "Provide a valid resource identifier and resubmit the request.",
    ),
    "PropertyValueNotInList": (
        "The value '%1' for the property %2 is not in the list of acceptable values.",
        "Warning",
        "Choose a value from the enumeration list that the implementation can support and "
        "resubmit the request if the operation failed.",
    ),
    "PropertyValueTypeError": (
        "The value '%1' for the property %2 is not a type that the property can accept.",
        "Warning",
        "Correct the value for the property in the request body and resubmit the request if "
        "the operation failed.",
    ),
    "PropertyUnknown": (
        "The property %1 is not in the list of valid properties for the resource.",
        "Warning",
        "Remove the unknown property from the request body and resubmit the request if the "
        "operation failed.",
    ),
    "PropertyNotWritable": (
        "The property %1 is a read-only property and cannot be assigned a value.",
        "Warning",
        "Remove the property from the request body and resubmit the request if the operation "
        "failed.",
    ),
    "PropertyMissing": (
        "The property %1 is a required property and must be included in the request.",
        "Warning",
        "Ensure that the property is in the request body and has a valid value and resubmit "
        "the request if the operation failed.",
    ),
    "ActionParameterMissing": (
        "The action %1 requires the parameter %2 to be present in the request body.",
        "Critical",
        "Supply the action with the required parameter in the request body when the request "
        "is resubmitted.",
    ),
    "ActionParameterUnknown": (
        "The action %1 was submitted with the invalid parameter %2.",
        "Warning",
        "Correct the invalid action parameter and resubmit the request if the operation failed.",
    ),
    "ActionParameterValueNotInList": (
        "The value '%1' for the parameter %2 in the action %3 is not in the list of acceptable "
        "values.",
        "Warning",
        "Choose a value from the enumeration list that the implementation can support and "
        "resubmit the request if the operation failed.",
    ),
    "ActionParameterValueTypeError": (
        "The value '%1' for the parameter %2 in the action %3 is not a type that the parameter "
        "can accept.",
        "Warning",
        "Correct the value for the parameter in the request body and resubmit the request if "
        "the operation failed.",
    ),
    "ActionParameterValueFormatError": (
        "The value '%1' for the parameter %2 in the action %3 is not a format that the "
        "parameter can accept.",
        "Warning",
        "Correct the value for the parameter in the request body and resubmit the request if "
        "the operation failed.",
    ),
    "ActionParameterNotSupported": (
        "The parameter %1 for the action %2 is not supported on the target resource.",
        "Warning",
        "Remove the parameter supplied and resubmit the request if the operation failed.",
    ),
    "ActionParameterValueError": (
        "The value for the parameter %1 in the action %2 is invalid.",
        "Warning",
        "Correct the value for the parameter in the request body and resubmit the request if "
        "the operation failed.",
    ),
    "MalformedJSON": (
        "The request body submitted was malformed JSON and could not be parsed by the receiving "
        "service.",
        "Critical",
        "Ensure that the request body is valid JSON and resubmit the request.",
    ),
    "PayloadTooLarge": (
        "The supplied payload exceeds the maximum size supported by the service.",
        "Critical",
        "Check that the supplied payload is correct and supported by this service.",
    ),
    "PreconditionFailed": (
        "The ETag supplied did not match the ETag required to change this resource.",
        "Critical",
        "Try the operation again using the appropriate ETag.",
    ),
    "NoValidSession": (
        "There is no valid session established with the implementation.",
        "Critical",
        "Establish a session before attempting any operations.",
    ),
    "InsufficientPrivilege": (
        "There are insufficient privileges for the account or credentials associated with the "
        "current session to perform the requested operation.",
        "Critical",
        "Either abandon the operation or change the associated access rights and resubmit the "
        "request if the operation failed.",
    ),
    "ResourceInUse": (
        "The change to the requested resource failed because the resource is in use or in "
        "transition.",
        "Warning",
        "Remove the condition and resubmit the request if the operation failed.",
    ),
    "OperationNotAllowed": (
        "The HTTP method is not allowed on this resource.",
        "Critical",
        "None.",
    ),
    "ServiceTemporarilyUnavailable": (
        "The service is temporarily unavailable.  Retry in %1 seconds.",
        "Critical",
        "Wait for the indicated retry duration and retry the operation.",
    ),
    "CouldNotEstablishConnection": (
        "The service failed to establish a connection with the URI '%1'.",
        "Critical",
        "Ensure that the URI contains a valid and reachable node name, protocol information, "
        "and other URI components.",
    ),
    "InternalError": (
        "The request failed due to an internal service error.  The service is still operational.",
        "Critical",
        "Resubmit the request.  If the problem persists, consider resetting the service.",
    ),
}


@dataclass(frozen=True, slots=True)
class Message:
    """One entry of ``@Message.ExtendedInfo``."""

    message_id: str  # without the registry prefix: "ResourceNotFound"
    args: tuple[str, ...] = ()
    related: tuple[str, ...] = ()  # JSON pointers: "#/ResetType"

    def as_dict(self) -> dict[str, Any]:
        template, severity, resolution = _BASE[self.message_id]
        text = template
        for i, arg in reversed(list(enumerate(self.args, 1))):
            text = text.replace(f"%{i}", arg)
        out: dict[str, Any] = {
            "@odata.type": MESSAGE_TYPE,
            "MessageId": f"{REGISTRY}.{self.message_id}",
            "Message": text,
            "MessageArgs": list(self.args),
            "MessageSeverity": severity,
            "Resolution": resolution,
        }
        if self.related:
            out["RelatedProperties"] = list(self.related)
        return out


@dataclass
class RedfishError(Exception):
    """An error answer: the HTTP status, what went wrong in our words, and the registry
    messages that say it in Redfish's."""

    status: int
    detail: str
    messages: list[Message] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.detail

    def body(self) -> dict[str, Any]:
        return error_body(self.detail, self.messages)


def error_body(detail: str, messages: list[Message]) -> dict[str, Any]:
    """``code`` is the first message's id (``GeneralError`` when several or none), ``message``
    our own sentence (what a person reads in a client's exception), ``@Message.ExtendedInfo``
    the registry entries."""
    code = messages[0].message_id if len(messages) == 1 else "GeneralError"
    return {
        "error": {
            "code": f"{REGISTRY}.{code}",
            "message": detail,
            "@Message.ExtendedInfo": [m.as_dict() for m in messages],
        }
    }


def fail(status: int, detail: str, message_id: str = "GeneralError", *args: str) -> RedfishError:
    """A :class:`RedfishError` with one message (``args`` fill its %1, %2...)."""
    return RedfishError(status, detail, [Message(message_id, tuple(args))])


def not_found(kind: str, name: str) -> RedfishError:
    return RedfishError(
        404, f"no {kind} named {name!r}", [Message("ResourceNotFound", (kind, name))]
    )


# The auth middleware and aiohttp answer in their own words: the message id that says it.
STATUS_MESSAGES: dict[int, str] = {
    400: "GeneralError",
    401: "NoValidSession",
    403: "InsufficientPrivilege",
    404: "GeneralError",
    405: "OperationNotAllowed",
    409: "ResourceInUse",
    412: "PreconditionFailed",
    413: "PayloadTooLarge",
    429: "GeneralError",
    500: "InternalError",
    503: "GeneralError",
}
