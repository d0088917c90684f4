"""Schemathesis hooks for Patron's CI run (`.ci/run`, step "schemathesis").

Every check runs (`--checks all`). Two things here make the run say what the API is, not what a
random client does wrong:

1. A fresh `Idempotency-Key` for every request drawn as valid. The key is the client's to make
   unique (draft-ietf-httpapi-idempotency-key-header): a generator that draws "0" twice for two
   different requests gets the 422 `idempotency_key_reused` the draft prescribes. Requests drawn
   as invalid keep their key, so the check that an invalid key is refused still runs.

2. `filter_failure` drops a "schema-valid request rejected" (ST202) only when the server's
   problem document names a rule a JSON Schema cannot state, from the list below, each with
   its reason. Everything else a schema can state is in the document (crates/patron-http/src/
   bounds.rs); a refusal outside this list fails the run.
"""

import json
import re
import uuid

import jsonschema_rs
import schemathesis
from hypothesis.internal import lambda_sources
from schemathesis.core import NotSet

# (problem code, field pattern or None for "no field") -> why no schema can state it.
UNSTATABLE = [
    ("invalid_value", r"phone", "the numbering plan of the club's country (libphonenumber)"),
    ("invalid_value", r"card_number|replacement", "a card number's check digit"),
    ("invalid_parameter", r"card|phone|email|external_id|referral_code|number", "a look-up value's check digit or numbering plan"),
    ("invalid_coupon_code", r"code", "a coupon code's check character"),
    ("invalid_value", r"referral_code", "a referral code's check character"),
    ("unknown_referral_code", r"referral_code", "names no member of the club"),
    ("invalid_value", r"time_zone", "a name the time zone database has"),
    ("invalid_value", r"birthday", "a real date, not after today"),
    ("invalid_parameter", r"as_of|since|from|to", "a real date; `to` not before `from`; at most 400 periods"),
    ("invalid_value", r"email", "an address's full syntax (RFC 5321 lengths of each part)"),
    ("invalid_value", r"occurred_at|starts_at|ends_at", "relative to now, or to another field"),
    ("invalid_value", r"lines(\[\d+\](\.(quantity|discount_minor|unit_price_minor))?)?",
     "the program's [limits] on a line's amount (quantity times price) and on a purchase's total; a discount no larger than the line"),
    ("invalid_value", r"points", "the program's [limits] and the member's balance"),
    ("wrong_currency", r"currency", "the program's currency"),
    ("invalid_value", r"tier", "a tier of the club's program"),
    ("invalid_value", r"until", "a real date or instant, in the future"),
    ("idempotency_key_reused", r"Idempotency-Key",
     "keys are the client's to keep unique; the stateful phase sends drawn keys map_case never sees"),
    ("insufficient_points", r"points", "the member's balance"),
    ("capture_too_large", r"points", "what the hold holds"),
    ("refund_too_large", r"lines(\[\d+\](\.(quantity|line_no))?)?", "what is left of the purchase"),
    ("invalid_value", r"lines\[\d+\]\.line_no", "a line the purchase has"),
    ("coupon_not_for_member", r"member_id|code", "the member the coupon was issued to"),
    ("referral_loop", r"referral_code", "the members the newcomer already referred"),
    ("reward_unavailable", r"reward_id", "the member's tier, segments, the reward's stock, window and limits"),
    ("transfer_to_self", r"to_member_id", "the sender's own id"),
    ("self_referral", r"referral_code|email|phone", "the referrer's own code, e-mail or phone"),
    ("invalid_value", r"return_codes", "codes are returned for batches of at most 1000"),
    ("invalid_parameter", r"cursor", "a look-up answers one page: no cursor with a filter"),
    ("invalid_value", r"benefit(\..*)?", "which fields a benefit needs depends on its kind"),
    ("invalid_value", r"attributes(\..*)?|properties", "the size of all of them together as JSON"),
    ("invalid_value", r"prefix", "a prefix's room in the code's length"),
    ("invalid_parameter", None, "one look-up filter at a time"),
    ("invalid_cursor", r"cursor", "a cursor is one the server handed out"),
    ("invalid_program", None, "a program is TOML that must make sense as a whole"),
]

# Hypothesis parses the source of the lambdas it names in its messages; on Python 3.11.7 the
# parser fails on Schemathesis's largest module with "SystemError: AST constructor recursion
# depth mismatch" (a CPython bug, fixed in later releases), which aborts the operation being
# tested. A lambda it cannot name is named "<unknown>", as Hypothesis does when it gets lost.
_describe = lambda_sources._lambda_description


def _lambda_description(f, *args, **kwargs):
    try:
        return _describe(f, *args, **kwargs)
    except (SystemError, RecursionError):
        return "lambda: <unknown>"


lambda_sources._lambda_description = _lambda_description

_RULES = [(code, re.compile(rf"^(?:{field})$") if field else None) for code, field, _ in UNSTATABLE]


@schemathesis.serializer("application/toml")
def toml(ctx, value):
    """The program's PUT takes TOML text: send the drawn string as it is."""
    if value is None:
        return None
    return value.encode("utf-8") if isinstance(value, str) else json.dumps(value).encode("utf-8")


@schemathesis.hook
def map_case(ctx, case):
    meta = case.meta
    positive = meta is None or meta.generation.mode.is_positive
    if positive and case.headers and "Idempotency-Key" in case.headers:
        case.headers["Idempotency-Key"] = f"st-{uuid.uuid4()}"
    return case


def _problem(response):
    try:
        return json.loads(response.content)
    except (ValueError, TypeError):
        return None


_VALIDATORS = {}


def _validator(schema, components):
    key = json.dumps(schema, sort_keys=True)
    if key not in _VALIDATORS:
        _VALIDATORS[key] = jsonschema_rs.Draft202012Validator({**schema, "components": components})
    return _VALIDATORS[key]


def _not_schema_valid(case):
    """Whether the request breaks the document after all, judged by an exact validator.

    The document's patterns use Unicode property escapes (`\\p{C}`: controls, format
    characters, surrogates, private use, unassigned). Schemathesis draws strings from its own
    approximation of those classes (for `\\p{C}`, the controls alone) and checks them against
    the same approximation, so a request it calls valid may hold, say, a soft hyphen (U+00AD,
    a format character) that the document refuses. jsonschema-rs, given the document as
    written, reads the patterns exactly: a request it finds invalid was a negative one, and the
    server was right to refuse it.
    """
    document = case.operation.schema.raw_schema
    components = document.get("components", {})
    operation = document["paths"][case.operation.path][case.method.lower()]
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if body is not None and case.body is not None and not isinstance(case.body, NotSet):
        if not _validator(body, components).is_valid(case.body):
            return True
    sent = {"query": case.query or {}, "path": case.path_parameters or {}}
    for parameter in operation.get("parameters", []):
        values = sent.get(parameter.get("in"), {})
        schema = parameter.get("schema", {})
        value = values.get(parameter.get("name"))
        # Parameters travel as text: only a string's schema judges what was sent as it is.
        if isinstance(value, str) and schema.get("type") == "string":
            if not _validator(schema, components).is_valid(value):
                return True
    return False


@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    """Keep the failure (True) unless it is an ST202 whose refusal is on the list above."""
    if getattr(failure, "code", None) != "ST202" or response is None:
        return True
    problem = _problem(response)
    if not isinstance(problem, dict):
        return True
    if _not_schema_valid(case):
        return False
    code, field = problem.get("code"), problem.get("field")
    for rule_code, rule_field in _RULES:
        if code != rule_code:
            continue
        if rule_field is None and field is None:
            return False
        if rule_field is not None and field is not None and rule_field.match(field):
            return False
    return True
