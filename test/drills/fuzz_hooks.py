"""Schemathesis hooks for the fuzz drill (loaded with SCHEMATHESIS_HOOKS=test/drills/fuzz_hooks.py).

positive_data_acceptance sends requests the OpenAPI document allows and expects them accepted. A few rules are
beyond JSON Schema; for positive cases only, this repairs what breaks them (the repaired case still matches the
document, and schemathesis re-checks that) instead of filtering, so Hypothesis keeps its budget:
  - a key repeated in one batch or transaction (the same number as 1 and "1.0", the same bytes in either base64);
  - an attribute in more than one PATCH clause;
  - `between` bounds out of order;
  - a condition tree deeper than the server's limit (MAX_CONDITION_DEPTH);
  - a query filter on the queried table's or index's own keys;
  - a generated cursor (only a cursor from a previous response is valid);
  - a scan segment not below totalSegments;
  - PUT body keys that differ from the path's;
  - numbers nested in map, list and json values out of DynamoDB's range (the document leaves those values untyped);
  - `?condition=` text (the document says JSON text; trees are fuzzed in bodies: PATCH, filter, transactions).
The models come from the sidecar's /v1/models (DRILL_FUZZ_URL, set by the drill).
"""

import base64
import binascii
import json
import os
import re
import urllib.request
from decimal import Decimal, InvalidOperation

import schemathesis

MAX_CONDITION_DEPTH = 5
UPDATE_CLAUSES = ("set", "setIfNotExists", "remove", "add", "delete", "append", "prepend")

_models = None


def models():
    global _models
    if _models is None:
        with urllib.request.urlopen(f"{os.environ['DRILL_FUZZ_URL']}/v1/models") as response:
            listed = json.load(response)
        listed = listed if isinstance(listed, list) else listed.get("models", [])
        _models = {m["name"]: m for m in listed}
    return _models


def model_of(path):
    parts = path.split("/")
    return models().get(parts[3]) if len(parts) > 3 and parts[1:3] == ["v1", "models"] else None


def key_attrs(model):
    keys = [model["keys"]["partition"]]
    if model["keys"].get("sort"):
        keys.append(model["keys"]["sort"])
    return keys


def normal(value, dms_type):
    """One key value as DynamoDB compares it."""
    try:
        if dms_type == "N":
            return ("N", Decimal(str(value)).normalize())
        if dms_type == "B":
            text = str(value)
            text += "=" * (-len(text) % 4)
            return ("B", base64.b64decode(text.replace("-", "+").replace("_", "/")))
    except (InvalidOperation, binascii.Error, ValueError):
        pass
    return (dms_type, value if isinstance(value, str) else json.dumps(value, sort_keys=True))


def key_id(model, obj):
    if not isinstance(obj, dict):
        return None
    return (model["name"],) + tuple(normal(obj.get(k["attribute"]), k["type"]) for k in key_attrs(model))


def distinct(entries, identify):
    seen, kept = set(), []
    for entry in entries:
        ident = identify(entry)
        if ident is not None and ident in seen:
            continue
        seen.add(ident)
        kept.append(entry)
    return kept


def order_key(value, dms_type=None):
    if dms_type == "B":
        return (1, Decimal(0), normal(value, "B")[1])
    # Strings order by their bytes, except on an N attribute, which takes numbers as strings of digits too.
    if isinstance(value, (int, float)) or (dms_type == "N" and isinstance(value, str) and re.match(r"-?[0-9]", value)):
        try:
            return (0, Decimal(str(value)), "")
        except InvalidOperation:
            pass
    if isinstance(value, str):
        return (1, Decimal(0), value.encode("utf-8", "surrogatepass"))
    return (2, Decimal(0), json.dumps(value, sort_keys=True))


def attr_type(model, name):
    for attr in (model or {}).get("attributes", []):
        if attr["attribute"] == name:
            return attr["type"]
    return None


def is_json(model, name):
    return any(a["attribute"] == name and a.get("json") for a in (model or {}).get("attributes", []))


def ordered_between(node, dms_type=None):
    values = node.get("values")
    if node.get("op") == "between" and isinstance(values, list) and len(values) == 2:
        try:
            node["values"] = sorted(values, key=lambda v: order_key(v, dms_type))
        except TypeError:
            pass


def first_leaf(node):
    while isinstance(node, dict):
        if isinstance(node.get("and"), list) and node["and"]:
            node = node["and"][0]
        elif isinstance(node.get("or"), list) and node["or"]:
            node = node["or"][0]
        elif "not" in node:
            node = node["not"]
        else:
            return node
    return node


def repair_condition(node, depth=0, model=None):
    """Bounds in order; subtrees beyond the depth limit replaced by their first leaf."""
    if not isinstance(node, dict):
        return node
    for group in ("and", "or"):
        if isinstance(node.get(group), list):
            if depth >= MAX_CONDITION_DEPTH:
                return repair_condition(first_leaf(node), depth, model)
            node[group] = [repair_condition(child, depth + 1, model) for child in node[group]]
            return node
    if "not" in node and len(node) == 1:
        if depth >= MAX_CONDITION_DEPTH:
            return repair_condition(first_leaf(node), depth, model)
        node["not"] = repair_condition(node["not"], depth + 1, model)
        return node
    if not node.get("size") and is_json(model, node.get("attr")) and node.get("op") == "between" and isinstance(node.get("values"), list) and node["values"]:
        # A json attribute is stored as its JSON text and compared as that text, byte by byte: equal bounds are in
        # order whatever the value.
        node["values"] = [node["values"][0], node["values"][0]]
        return node
    ordered_between(node, None if node.get("size") else attr_type(model, node.get("attr")))
    return node


def leaves(node):
    if isinstance(node, dict):
        for group in ("and", "or"):
            if isinstance(node.get(group), list):
                for child in node[group]:
                    yield from leaves(child)
                return
        if "not" in node and len(node) == 1:
            yield from leaves(node["not"])
            return
        yield node


def repair_update(update, model=None):
    if not isinstance(update, dict):
        return
    seen = set()
    for clause in UPDATE_CLAUSES:
        members = update.get(clause)
        if isinstance(members, dict):
            for name in [n for n in members if n in seen]:
                del members[name]
            seen.update(members)
        elif isinstance(members, list):
            update[clause] = [n for n in members if n not in seen]
            seen.update(n for n in members if isinstance(n, str))
    if "condition" in update:
        update["condition"] = repair_condition(update["condition"], 0, model)


def query_keys(model, body):
    index = body.get("index")
    if index is None:
        return {k["attribute"] for k in key_attrs(model)}
    for i in model["indexes"]:
        if i["name"] == index:
            return {i["partition"]["attribute"]} | ({i["sort"]["attribute"]} if i.get("sort") else set())
    return set()


def distinct_sets(model, item):
    """NS and BS members equal as numbers or bytes (1 and 1.0; either base64 alphabet) are one member."""
    if not model or not isinstance(item, dict):
        return
    for attr in model["attributes"]:
        value = item.get(attr["attribute"])
        if attr["type"] in ("NS", "BS") and isinstance(value, list):
            item[attr["attribute"]] = distinct(value, lambda v: normal(v, attr["type"][0]))


def sort_key_of(model, body):
    index = body.get("index")
    if index is None:
        return (model["keys"].get("sort") or {}).get("attribute")
    for i in model["indexes"]:
        if i["name"] == index:
            return (i.get("sort") or {}).get("attribute")
    return None


def repair_body(operation, model, body):
    path, method = operation.path, operation.method.upper()
    if path.endswith("/batch-write"):
        for put in body.get("puts") or []:
            distinct_sets(model, put)
    elif method in ("POST", "PUT") and path.split("/")[-1] in ("items", "{pk}", "{sk}"):
        distinct_sets(model, body)
    elif method == "PATCH":
        for clause in ("set", "setIfNotExists", "add", "delete"):
            distinct_sets(model, body.get(clause))
    if path.endswith("/batch-get") and isinstance(body.get("keys"), list):
        body["keys"] = distinct(body["keys"], lambda k: key_id(model, k))
    elif path.endswith("/batch-write"):
        seen = set()
        for member in ("puts", "deletes"):
            if isinstance(body.get(member), list):
                kept = []
                for entry in body[member]:
                    ident = key_id(model, entry)
                    if ident in seen:
                        continue
                    seen.add(ident)
                    kept.append(entry)
                body[member] = kept
    elif path in ("/v1/transactions/write", "/v1/transactions/get") and isinstance(body.get("items"), list):
        def target(entry):
            m = models().get(entry.get("model")) if isinstance(entry, dict) else None
            return key_id(m, entry.get("key") or entry.get("item")) if m else None
        body["items"] = distinct(body["items"], target)
        if "idempotencyKey" in body:
            body["items"] = body["items"][:99]  # with a key, at most 99 items (the idempotency record takes a slot)
        for entry in body["items"]:
            if isinstance(entry, dict):
                m = models().get(entry.get("model"))
                distinct_sets(m, entry.get("item"))
                if isinstance(entry.get("update"), dict):
                    for clause in ("set", "setIfNotExists", "add", "delete"):
                        distinct_sets(m, entry["update"].get(clause))
                if entry.get("op") == "put" and "item" in entry:
                    entry.pop("key", None)  # the item carries the key; a generated `key` names another item
                if "condition" in entry:
                    entry["condition"] = repair_condition(entry["condition"], 0, m)
                repair_update(entry.get("update"), m)
    elif method == "PATCH":
        repair_update(body, model)
    elif method == "PUT" and model:
        for k in key_attrs(model):
            body.pop(k["attribute"], None)
    if path.endswith("/query") or path.endswith("/scan"):
        body.pop("cursor", None)
        if "filter" in body:
            body["filter"] = repair_condition(body["filter"], 0, model)
            if path.endswith("/query") and any(leaf.get("attr") in query_keys(model, body) for leaf in leaves(body["filter"])):
                del body["filter"]
        if isinstance(body.get("sort"), dict):
            ordered_between(body["sort"], attr_type(model, sort_key_of(model, body)))
        segments = body.get("totalSegments")
        segment = body.get("segment")
        if isinstance(segment, (int, float)) and isinstance(segments, (int, float)) and segments >= 1:
            body["segment"] = int(segment) % int(segments)
        elif segment is None and isinstance(segments, (int, float)):
            # totalSegments alone is an NDJSON export's (its description says so); a JSON answer needs a segment.
            body["segment"] = 0


MIN_MAGNITUDE = Decimal("1e-130")
MAX_MAGNITUDE = Decimal(repr(9.999999999999998e125))


def in_range(value):
    """Numbers nested in map, list and json values (untyped in the document) kept within DynamoDB's range."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        magnitude = abs(Decimal(repr(value)) if isinstance(value, float) else Decimal(value))
        return value if magnitude == 0 or MIN_MAGNITUDE <= magnitude <= MAX_MAGNITUDE else 1
    if isinstance(value, list):
        return [in_range(v) for v in value]
    if isinstance(value, dict):
        return {k: in_range(v) for k, v in value.items()}
    return value


@schemathesis.hook
def map_case(context, case):
    meta = getattr(case, "meta", None)
    if meta is None or meta.generation.mode.is_negative:
        return case
    model = model_of(case.operation.path)
    if isinstance(case.body, dict):
        case.body = in_range(case.body)
        repair_body(case.operation, model, case.body)
    query = case.query if isinstance(case.query, dict) else None
    if query and "condition" in query:
        # `?condition=` is JSON text (a string in the document, contentMediaType application/json): generated text
        # is almost never a condition tree, and the coverage phase cannot afford the tree as parameter content.
        del query["condition"]
    return case


def budget_ran_out(case, response):
    """A 504 ErrDeadlineExceeded to a request that set its own X-Request-Timeout-Ms is the documented answer.

    The fuzzer picks budgets of a few milliseconds, which no backend call fits in; not_a_server_error would call
    that a server error."""
    headers = {k.lower(): v for k, v in (case.headers or {}).items()}
    if "x-request-timeout-ms" not in headers or getattr(response, "status_code", None) != 504:
        return False
    try:
        return json.loads(response.content).get("code") == "ErrDeadlineExceeded"
    except (ValueError, AttributeError):
        return False


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """positive_data_acceptance failures that are no document lie.

    decode takes raw DynamoDB images (AttributeValueMap), which the document does not type per model: an image that
    is not one of the model's items is refused with 400, and that is no document lie. Every other check still applies."""
    if budget_ran_out(case, response):
        return False
    if "Schema-valid request rejected" not in str(getattr(failure, "title", "")):
        return True
    if case.operation.path.endswith("/decode"):
        return False
    # The stateful phase fills parameters from inferred links (a Session id as a Blob's numeric key, a response's
    # key into another item's path): those values do not come from the document, so "valid by the document" does
    # not hold for them.
    phase = getattr(getattr(case.meta, "phase", None), "name", None)
    return str(getattr(phase, "value", phase)) != "stateful"
