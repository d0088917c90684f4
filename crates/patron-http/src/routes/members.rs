//! Members: enroll, read, look up, list, change, leave; their balance and ledger.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use patron_engine::model::Lookup;
use patron_engine::{EnrollRequest, MemberPatch};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::dto::members::{
    EnrollBody, ExitOut, LedgerEntryOut, LedgerPage, MemberBalanceOut, MemberOut, MemberPage,
    MemberPatchBody, ReferrerBody,
};
use crate::extract::{
    Admin, Auth, IdempotencyKey, JsonBody, PathParam, PosRead, PosWrite, QueryParams, Read,
};
use crate::ids::{ClubIds, IdKind, Present};
use crate::problem::{Code, Problem, ProblemDocument};
use crate::routes::{Reply, decode_cursor, encode_cursor, json_response, mutate, page_size};
use crate::state::AppState;

const MEMBER_CURSOR: &str = "member";
const LEDGER_CURSOR: &str = "ledger";

fn member_location(member: &MemberOut) -> Option<String> {
    Some(format!("/v1/members/{}", member.id))
}

/// Enroll a member
///
/// Creates the member with their wallet, a card (the pre-printed `card_number`, or a new
/// virtual card) and the consents given.
#[utoipa::path(
    post, path = "/v1/members", tag = "members", operation_id = "enroll_member",
    request_body = EnrollBody,
    responses(
        (status = 201, description = "Enrolled (or the stored answer of a repeated request)", body = MemberOut,
            headers(("Location" = String, description = "The new member"))),
        (status = 404, description = "`card_not_found`: the pre-printed card handed over is not one of the club's", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`duplicate`: the phone, email or external id is taken; `card_unavailable`; `no_program`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_value`; `unknown_referral_code`: the referral code belongs to no active member; `self_referral`: the newcomer has the referrer's phone or email", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn enroll(
    State(state): State<AppState>,
    auth: Auth<PosWrite>,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<EnrollBody>,
) -> Result<Response, Problem> {
    let referral_code = body.referral_code.clone();
    let request = EnrollRequest::from(body);
    let engine = state.engine();
    mutate::<_, MemberOut>(
        &state,
        &auth.tenant,
        key.as_deref(),
        Reply::created(None, member_location),
        engine.enroll_referred(
            &auth.tenant,
            &request,
            referral_code.as_deref(),
            key.as_deref(),
        ),
    )
    .await
}

/// The member look-up and list parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MemberQuery {
    /// Find the member with this phone number (any format the program's country understands).
    phone: Option<String>,
    /// Find the member with this email (case-insensitive).
    email: Option<String>,
    /// Find the member holding this active card.
    card: Option<String>,
    /// Find the member with this external id.
    external_id: Option<String>,
    /// Find the active member whose referral code this is (dashes and case do not matter).
    referral_code: Option<String>,
    /// From a previous page's `next_cursor`.
    cursor: Option<String>,
    /// Page size (capped by the server's maximum).
    limit: Option<u32>,
}

/// List or look up members
///
/// Without a filter: every member in id order, a page at a time (`read` and `admin` keys).
/// With exactly one of `phone`, `email`, `card`, `external_id` or `referral_code`: the member
/// found, as a page of zero or one (`pos` keys too).
#[utoipa::path(
    get, path = "/v1/members", tag = "members", operation_id = "list_members",
    params(MemberQuery),
    responses(
        (status = 200, description = "A page of members", body = MemberPage),
        (status = 400, description = "`invalid_parameter` (two filters, a filter with a cursor); `invalid_cursor`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_value`: a phone or email that cannot be normalized", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth<PosRead>,
    QueryParams(query): QueryParams<MemberQuery>,
) -> Result<Response, Problem> {
    let filters = [
        query.phone.as_deref().map(Lookup::Phone),
        query.email.as_deref().map(Lookup::Email),
        query.card.as_deref().map(Lookup::Card),
        query.external_id.as_deref().map(Lookup::ExternalId),
        query.referral_code.as_deref().map(Lookup::ReferralCode),
    ];
    for (name, value) in [
        ("phone", &query.phone),
        ("email", &query.email),
        ("card", &query.card),
        ("external_id", &query.external_id),
        ("referral_code", &query.referral_code),
    ] {
        if let Some(value) = value {
            patron_domain::text::check_identifier(value, patron_domain::text::IDENTIFIER_CHARS_MAX)
                .map_err(|e| {
                    Problem::new(Code::InvalidParameter, format!("`{name}` {e}")).with_field(name)
                })?;
        }
    }
    let mut filters = filters.into_iter().flatten();
    let lookup = filters.next();
    if filters.next().is_some() {
        return Err(Problem::new(
            Code::InvalidParameter,
            "look a member up by one of phone, email, card, external_id or referral_code at a time",
        ));
    }
    let engine = state.engine();
    if let Some(lookup) = lookup {
        if query.cursor.is_some() {
            return Err(Problem::new(
                Code::InvalidParameter,
                "a look-up answers one page; it takes no cursor",
            )
            .with_field("cursor"));
        }
        let found = engine.find_member(&auth.tenant, lookup).await?;
        let page = MemberPage {
            data: found.into_iter().map(MemberOut::from).collect(),
            next_cursor: None,
        };
        return Ok(json_response(StatusCode::OK, &page, false, None));
    }
    if !matches!(
        auth.scope,
        patron_engine::keys::Scope::Admin | patron_engine::keys::Scope::Read
    ) {
        return Err(Problem::new(
            Code::InsufficientScope,
            "a pos key looks members up by phone, email, card or external_id; listing them all needs a read or admin key",
        ));
    }
    let after = query
        .cursor
        .as_deref()
        .map(|cursor| decode_cursor(MEMBER_CURSOR, cursor))
        .transpose()?;
    let limit = page_size(&state, query.limit);
    let mut members = engine
        .list_members(&auth.tenant, after.as_deref(), limit + 1)
        .await?;
    let more = i64::try_from(members.len()).unwrap_or(i64::MAX) > limit;
    members.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = more
        .then(|| members.last().map(|m| encode_cursor(MEMBER_CURSOR, &m.id)))
        .flatten();
    let page = MemberPage {
        data: members.into_iter().map(MemberOut::from).collect(),
        next_cursor,
    };
    Ok(json_response(StatusCode::OK, &page, false, None))
}

/// Get a member
#[utoipa::path(
    get, path = "/v1/members/{id}", tag = "members", operation_id = "get_member",
    params(("id" = String, Path, description = "The member id")),
    responses(
        (status = 200, description = "The member", body = MemberOut),
        (status = 404, description = "`member_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    auth: Auth<PosRead>,
    PathParam(id): PathParam,
) -> Result<Response, Problem> {
    let member = state.engine().member(&auth.tenant, &id).await?;
    Ok(json_response(
        StatusCode::OK,
        &MemberOut::from(member),
        false,
        None,
    ))
}

/// Change a member's profile
///
/// A field left out stays as it is; `null` clears it. Consents given are appended to the
/// member's consent history.
#[utoipa::path(
    patch, path = "/v1/members/{id}", tag = "members", operation_id = "update_member",
    params(("id" = String, Path, description = "The member id")),
    request_body = MemberPatchBody,
    responses(
        (status = 200, description = "The updated member", body = MemberOut),
        (status = 404, description = "`member_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`duplicate`, `member_exited`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_value`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    auth: Auth<Admin>,
    PathParam(id): PathParam,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<MemberPatchBody>,
) -> Result<Response, Problem> {
    let patch = MemberPatch::from(body);
    let engine = state.engine();
    mutate::<_, MemberOut>(
        &state,
        &auth.tenant,
        key.as_deref(),
        Reply::ok(None),
        engine.update_member(&auth.tenant, &id, &patch, key.as_deref()),
    )
    .await
}

/// Add who referred a member
///
/// For a newcomer who gave the referral code after enrolling: records the referrer, and the
/// referral rule pays on their first qualifying purchase. Only before the member's first
/// purchase, once, and never making a loop (the referrer may not be someone they referred,
/// directly or further down).
#[utoipa::path(
    post, path = "/v1/members/{id}/referrer", tag = "members", operation_id = "set_member_referrer",
    params(("id" = String, Path, description = "The member id")),
    request_body = ReferrerBody,
    responses(
        (status = 200, description = "The member, with `referred_by`", body = MemberOut),
        (status = 404, description = "`member_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`referral_not_allowed`: the member already has a referrer or a purchase; `member_exited`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, description = "`unknown_referral_code`; `self_referral`: the member's own code, phone or email; `referral_loop`: the referrer is below the member in the referral tree", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn set_referrer(
    State(state): State<AppState>,
    auth: Auth<PosWrite>,
    PathParam(id): PathParam,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<ReferrerBody>,
) -> Result<Response, Problem> {
    let engine = state.engine();
    mutate::<_, MemberOut>(
        &state,
        &auth.tenant,
        key.as_deref(),
        Reply::ok(None),
        engine.set_referrer(&auth.tenant, &id, &body.referral_code, key.as_deref()),
    )
    .await
}

/// A member leaves the club
///
/// Pending points are voided, holds released, points forfeited or kept as the program says,
/// personal data erased and cards blocked. The ledger stays under the (now anonymous) id.
#[utoipa::path(
    post, path = "/v1/members/{id}/exit", tag = "members", operation_id = "exit_member",
    params(("id" = String, Path, description = "The member id")),
    responses(
        (status = 200, description = "The member left", body = ExitOut),
        (status = 404, description = "`member_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, description = "`member_exited`: already left", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn exit(
    State(state): State<AppState>,
    auth: Auth<Admin>,
    PathParam(id): PathParam,
    IdempotencyKey(key): IdempotencyKey,
) -> Result<Response, Problem> {
    let engine = state.engine();
    let actor = auth.actor();
    mutate::<_, ExitOut>(
        &state,
        &auth.tenant,
        key.as_deref(),
        Reply::ok(Some("member_exit")),
        engine.exit_member(&auth.tenant, &id, &actor, key.as_deref()),
    )
    .await
}

/// A member's balance
///
/// Available, pending and held points, debt, the soonest expiries, lifetime earnings, the
/// tier (its name, multiplier and benefits in the member's language, a manual floor) and the
/// distance to the next one, and `tier_review`: when the member would move down if nothing
/// changes, to which tier, and how much more keeps it.
#[utoipa::path(
    get, path = "/v1/members/{id}/balance", tag = "members", operation_id = "get_balance",
    params(("id" = String, Path, description = "The member id")),
    responses(
        (status = 200, description = "The balance", body = MemberBalanceOut),
        (status = 404, description = "`member_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn balance(
    State(state): State<AppState>,
    auth: Auth<PosRead>,
    PathParam(id): PathParam,
) -> Result<Response, Problem> {
    let view = state.engine().balance_view(&auth.tenant, &id).await?;
    let body = MemberBalanceOut::new(id, view.balance, &view.tier);
    Ok(json_response(StatusCode::OK, &body, false, None))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// From a previous page's `next_cursor`.
    cursor: Option<String>,
    /// Page size (capped by the server's maximum).
    limit: Option<u32>,
}

/// A member's ledger
///
/// Every entry that moved the member's points, newest first.
#[utoipa::path(
    get, path = "/v1/members/{id}/ledger", tag = "members", operation_id = "get_ledger",
    params(("id" = String, Path, description = "The member id"), PageQuery),
    responses(
        (status = 200, description = "A page of ledger entries", body = LedgerPage),
        (status = 400, description = "`invalid_parameter`, `invalid_cursor`", body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, description = "`member_not_found`", body = ProblemDocument, content_type = "application/problem+json"),
    )
)]
pub async fn ledger(
    State(state): State<AppState>,
    auth: Auth<Read>,
    PathParam(id): PathParam,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<Response, Problem> {
    let ids = ClubIds::new(&auth.tenant.id_key);
    // The position is the last entry's opaque id, so the cursor shows no more than the page.
    let before = query
        .cursor
        .as_deref()
        .map(|cursor| {
            let position = decode_cursor(LEDGER_CURSOR, cursor)?;
            ids.decode(IdKind::Transfer, &position).ok_or_else(|| {
                Problem::new(Code::InvalidCursor, "malformed cursor").with_field("cursor")
            })
        })
        .transpose()?;
    let limit = page_size(&state, query.limit);
    let mut entries = state
        .engine()
        .member_ledger(&auth.tenant, &id, before, limit + 1)
        .await?;
    let more = i64::try_from(entries.len()).unwrap_or(i64::MAX) > limit;
    entries.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = more
        .then(|| {
            entries
                .last()
                .map(|entry| encode_cursor(LEDGER_CURSOR, ids.transfer(entry.id).as_str()))
        })
        .flatten();
    let page = LedgerPage {
        data: entries
            .into_iter()
            .map(|entry| LedgerEntryOut::present(entry, &ids))
            .collect(),
        next_cursor,
    };
    Ok(json_response(StatusCode::OK, &page, false, None))
}
