#!/usr/bin/env python3
"""Parse custody's OTLP/JSON export strictly with the official protobuf definitions
(PyPI `opentelemetry-proto`, protobuf's JSON mapping) and print what survived, as JSON.

usage: otlp-roundtrip.py TRACES.json LOGS.json

OTLP/JSON differs from the proto3 JSON mapping in one way: trace and span ids are hex, not
base64 (the OTLP specification, "JSON Protobuf Encoding"). Each id is checked to be hex of the
right length and turned into base64 before parsing; everything else is parsed as written, with
unknown fields refused (ignore_unknown_fields=False). The output gives ids back as hex from the
parsed bytes, times as integers and attribute values as the parsed messages say.
"""
import base64
import json
import re
import sys

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


def ids_to_base64(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("traceId", "spanId", "parentSpanId"):
                want = 32 if k == "traceId" else 16
                if not (isinstance(v, str) and re.fullmatch("[0-9a-f]{%d}" % want, v)):
                    sys.exit("%s %r is not %d lower-case hex digits" % (k, v, want))
                obj[k] = base64.b64encode(bytes.fromhex(v)).decode()
            else:
                ids_to_base64(v)
    elif isinstance(obj, list):
        for v in obj:
            ids_to_base64(v)


def value(av):
    kind = av.WhichOneof("value")
    if kind == "array_value":
        return [value(x) for x in av.array_value.values]
    if kind == "bytes_value":
        return {"bytes": base64.b64encode(av.bytes_value).decode()}
    return getattr(av, kind) if kind else None


def attrs(kvs):
    return {kv.key: value(kv.value) for kv in kvs}


def load(path, message):
    with open(path) as f:
        doc = json.load(f)
    ids_to_base64(doc)
    return json_format.ParseDict(doc, message(), ignore_unknown_fields=False)


traces = load(sys.argv[1], ExportTraceServiceRequest)
logs = load(sys.argv[2], ExportLogsServiceRequest)
out = {"resource": {}, "spans": [], "logs": []}
for rs in traces.resource_spans:
    out["resource"] = attrs(rs.resource.attributes)
    for ss in rs.scope_spans:
        for s in ss.spans:
            assert len(s.trace_id) == 16 and len(s.span_id) == 8
            out["spans"].append({
                "trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(), "name": s.name,
                "kind": s.kind, "start": s.start_time_unix_nano, "end": s.end_time_unix_nano,
                "status": s.status.code, "attributes": attrs(s.attributes),
            })
for rl in logs.resource_logs:
    for sl in rl.scope_logs:
        for r in sl.log_records:
            body = value(r.body)
            out["logs"].append({
                "trace_id": r.trace_id.hex(), "span_id": r.span_id.hex(), "time": r.time_unix_nano,
                "severity": r.severity_number, "body": body, "attributes": attrs(r.attributes),
            })
json.dump(out, sys.stdout)
