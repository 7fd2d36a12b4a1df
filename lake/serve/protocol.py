"""Flight SQL's protobuf messages, built from their field lists (``format/FlightSql.proto`` in Apache Arrow).

Flight SQL rides on Flight: a command is a ``google.protobuf.Any`` in a descriptor, a ticket or an
action body. The messages are small, so they are declared here as field lists and turned into
protobuf classes at import, which spares generated code and a grpcio dependency (pyarrow.flight
carries the transport). They are declared with proto2 rules so that ``optional`` fields have
presence, as the proto3 ``optional`` of the original does; the wire format is the same.
"""

from __future__ import annotations

from typing import Any as AnyType

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

from ticklake.errors import QueryError

PACKAGE = "arrow.flight.protocol.sql"
_PREFIX = "type.googleapis.com/"
_F = descriptor_pb2.FieldDescriptorProto
_TYPES = {"string": _F.TYPE_STRING, "bytes": _F.TYPE_BYTES, "bool": _F.TYPE_BOOL, "int32": _F.TYPE_INT32}
_TYPES |= {"int64": _F.TYPE_INT64, "uint32": _F.TYPE_UINT32}

_TABLE = ((1, "optional", "string", "catalog"), (2, "optional", "string", "db_schema"), (3, "", "string", "table"))
# name -> fields as (number, label, type, field name); label: "" (singular), "optional", "repeated".
_MESSAGES: dict[str, tuple[tuple[int, str, str, str], ...]] = {
    "CommandGetSqlInfo": ((1, "repeated", "uint32", "info"),),
    "CommandGetCatalogs": (),
    "CommandGetDbSchemas": ((1, "optional", "string", "catalog"), (2, "optional", "string", "db_schema_filter_pattern")),
    "CommandGetTables": (
        (1, "optional", "string", "catalog"),
        (2, "optional", "string", "db_schema_filter_pattern"),
        (3, "optional", "string", "table_name_filter_pattern"),
        (4, "repeated", "string", "table_types"),
        (5, "", "bool", "include_schema"),
    ),
    "CommandGetTableTypes": (),
    "CommandGetXdbcTypeInfo": ((1, "optional", "int32", "data_type"),),
    "CommandGetPrimaryKeys": _TABLE,
    "CommandGetExportedKeys": _TABLE,
    "CommandGetImportedKeys": _TABLE,
    "CommandGetCrossReference": (
        (1, "optional", "string", "pk_catalog"),
        (2, "optional", "string", "pk_db_schema"),
        (3, "", "string", "pk_table"),
        (4, "optional", "string", "fk_catalog"),
        (5, "optional", "string", "fk_db_schema"),
        (6, "", "string", "fk_table"),
    ),
    "CommandStatementQuery": ((1, "", "string", "query"), (2, "optional", "bytes", "transaction_id")),
    "CommandStatementSubstraitPlan": ((2, "optional", "bytes", "transaction_id"),),
    "CommandStatementUpdate": ((1, "", "string", "query"), (2, "optional", "bytes", "transaction_id")),
    "CommandStatementIngest": ((7, "optional", "bytes", "transaction_id"),),
    "TicketStatementQuery": ((1, "", "bytes", "statement_handle"),),
    "CommandPreparedStatementQuery": ((1, "", "bytes", "prepared_statement_handle"),),
    "CommandPreparedStatementUpdate": ((1, "", "bytes", "prepared_statement_handle"),),
    "DoPutUpdateResult": ((1, "", "int64", "record_count"),),
    "DoPutPreparedStatementResult": ((1, "optional", "bytes", "prepared_statement_handle"),),
    "ActionCreatePreparedStatementRequest": ((1, "", "string", "query"), (2, "optional", "bytes", "transaction_id")),
    "ActionCreatePreparedStatementResult": (
        (1, "", "bytes", "prepared_statement_handle"),
        (2, "", "bytes", "dataset_schema"),
        (3, "", "bytes", "parameter_schema"),
    ),
    "ActionClosePreparedStatementRequest": ((1, "", "bytes", "prepared_statement_handle"),),
    "ActionCancelQueryRequest": ((1, "", "bytes", "info"),),
    "ActionCancelQueryResult": ((1, "", "int32", "result"),),
    # Flight's own (package arrow.flight.protocol): the CancelFlightInfo action's body and result.
    "CancelFlightInfoRequest": ((1, "", "bytes", "info"),),
    "CancelFlightInfoResult": ((1, "", "int32", "status"),),
}
CANCELLED = 1  # CancelStatus / CancelResult: the cancellation is complete
NOT_CANCELLABLE = 3


def _build() -> dict[str, type[Message]]:
    file = descriptor_pb2.FileDescriptorProto(name="ticklake_flight_sql.proto", package=PACKAGE, syntax="proto2")
    labels = {"": _F.LABEL_OPTIONAL, "optional": _F.LABEL_OPTIONAL, "repeated": _F.LABEL_REPEATED}
    for name, fields in _MESSAGES.items():
        message = file.message_type.add(name=name)
        for number, label, kind, field_name in fields:
            message.field.add(name=field_name, number=number, label=labels[label], type=_TYPES[kind])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}")) for name in _MESSAGES}


_CLASSES = _build()


def make(name: str, **fields: AnyType) -> AnyType:
    """A Flight SQL message by its name: ``make("TicketStatementQuery", statement_handle=b"...")``."""
    return _CLASSES[name](**fields)


def pack(message: Message) -> bytes:
    """`message` wrapped in a ``google.protobuf.Any``, serialized (what descriptors, tickets and results carry)."""
    wrapped = any_pb2.Any(type_url=_PREFIX + PACKAGE + "." + message.DESCRIPTOR.name, value=message.SerializeToString())
    return wrapped.SerializeToString()


def unpack(data: bytes) -> tuple[str, AnyType]:
    """The name and message of a serialized Any; QueryError if it is not one of the Flight SQL messages."""
    wrapped = any_pb2.Any()
    try:
        wrapped.ParseFromString(data)
    except DecodeError as e:
        raise QueryError("not a Flight SQL command (not a protobuf Any)") from e
    package, _, name = wrapped.type_url.removeprefix(_PREFIX).rpartition(".")
    if package != PACKAGE or name not in _CLASSES:
        raise QueryError(f"unknown Flight SQL command {wrapped.type_url or '(empty)'!r}")
    return name, parse(name, wrapped.value)


def parse(name: str, data: bytes) -> AnyType:
    """A message `name` from its serialized bytes (not wrapped in Any)."""
    message = _CLASSES[name]()
    try:
        message.ParseFromString(data)
    except DecodeError as e:
        raise QueryError(f"malformed Flight SQL {name}") from e
    return message
