//! Errors as RFC 9457 problem details (`application/problem+json`).
//!
//! Every error the API answers, from a malformed body to an empty wallet, is a [`Problem`]
//! with a stable snake_case `code` from [`Code`] (the catalogue in docs/API-DESIGN.md and on
//! `/docs`), the field at fault when there is one, and `errors` when there are several.
//! The `type` of a problem is `/problems/{code}`, which this server answers with a redirect to
//! the code's entry in the API reference.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use patron_engine::EngineError;
use patron_engine::model::{Rejection, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// The header that marks a stored response (a success or a problem) answered again for a
/// repeated request.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

macro_rules! codes {
    ($($variant:ident => ($code:literal, $status:literal, $title:literal, $when:literal),)*) => {
        /// Every error code the API answers. The code string is a stable contract; the title
        /// and the detail are for people and may change.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Code {
            $($variant,)*
        }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $code,)*
                }
            }

            pub fn status(self) -> StatusCode {
                match self {
                    $(Code::$variant => StatusCode::from_u16($status)
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),)*
                }
            }

            pub fn title(self) -> &'static str {
                match self {
                    $(Code::$variant => $title,)*
                }
            }

            /// When the code is answered, for the reference page.
            pub fn when(self) -> &'static str {
                match self {
                    $(Code::$variant => $when,)*
                }
            }
        }
    };
}

codes! {
    MalformedRequest => ("malformed_request", 400, "Malformed request",
        "The request is not HTTP the server can read: a malformed request line or header field. The server closes the connection."),
    MalformedBody => ("malformed_body", 400, "Malformed body",
        "The body is not syntactically valid JSON (for the program: not UTF-8 text)."),
    UnknownField => ("unknown_field", 400, "Unknown field",
        "The body has a field the operation does not know; `field` names it. Unknown fields are refused, never ignored."),
    MissingField => ("missing_field", 400, "Missing field",
        "A required field is absent; `field` names it."),
    InvalidType => ("invalid_type", 400, "Wrong type",
        "A field has the wrong JSON type (an array where an object belongs, text for a number) or a malformed value (a date that does not parse), or is given twice; `field` names it (absent when the whole body is at fault)."),
    InvalidParameter => ("invalid_parameter", 400, "Invalid parameter",
        "A query or path parameter is unknown or malformed; `field` names it."),
    InvalidCursor => ("invalid_cursor", 400, "Invalid cursor",
        "The `cursor` parameter is not one this API handed out for this list."),
    InvalidIdempotencyKey => ("invalid_idempotency_key", 400, "Invalid Idempotency-Key",
        "The Idempotency-Key header is empty, longer than 255 characters, or not printable text."),
    Unauthenticated => ("unauthenticated", 401, "Authentication required",
        "No `Authorization: Bearer <key>` header, or the key is unknown or revoked."),
    InsufficientScope => ("insufficient_scope", 403, "Insufficient scope",
        "The key's scope does not allow this operation (see the scope table)."),
    NotFound => ("not_found", 404, "Not found",
        "No such route."),
    MemberNotFound => ("member_not_found", 404, "Member not found",
        "No member with this id, phone, email, card or external id in the key's club."),
    PurchaseNotFound => ("purchase_not_found", 404, "Purchase not found",
        "No purchase with this id in the key's club."),
    RedemptionNotFound => ("redemption_not_found", 404, "Redemption not found",
        "No redemption with this id in the key's club."),
    CardNotFound => ("card_not_found", 404, "Card not found",
        "No card with this number in the key's club."),
    RewardNotFound => ("reward_not_found", 404, "Reward not found",
        "The program's catalog has no reward with this id."),
    CouponNotFound => ("coupon_not_found", 404, "Coupon not found",
        "No coupon with this code in the key's club (another club's codes answer this too)."),
    PromotionNotFound => ("promotion_not_found", 404, "Promotion not found",
        "No promotion with this id in the key's club."),
    ProgramNotFound => ("program_not_found", 404, "No program",
        "The club has no program yet: PUT /v1/program first."),
    TenantNotFound => ("tenant_not_found", 404, "Club not found",
        "The club does not exist."),
    SegmentNotFound => ("segment_not_found", 404, "Segment not found",
        "The program has no segment with this id (an RFV segment code or a `[[segments]]` id)."),
    NoRfvRun => ("no_rfv_run", 404, "No RFV run",
        "The club has no RFV run yet (or none with this id, or none as of this date): the nightly `segments` job makes one, or `patron jobs run-now segments`."),
    MethodNotAllowed => ("method_not_allowed", 405, "Method not allowed",
        "The route exists but not with this HTTP method."),
    IdempotencyKeyInFlight => ("idempotency_key_in_flight", 409, "Request still in progress",
        "A request with the same Idempotency-Key is still running on this server; retry after it finishes to get its stored response."),
    DocumentConflict => ("document_conflict", 409, "Document already posted",
        "A purchase or refund with this document id was already posted with different content."),
    Duplicate => ("duplicate", 409, "Already in use",
        "Another member already has this phone, email or external id; `field` names it."),
    AlreadyAttached => ("already_attached", 409, "Purchase already attached",
        "The purchase already belongs to a member."),
    RedemptionResolved => ("redemption_resolved", 409, "Redemption already resolved",
        "The redemption was already captured, released or completed."),
    MemberExited => ("member_exited", 409, "Member left the club",
        "The member has left the club; their record is kept without personal data."),
    ReferralNotAllowed => ("referral_not_allowed", 409, "Referrer cannot be added",
        "The member already has a referrer, or has already made a purchase: a referrer is added only before the first purchase, once."),
    CardUnavailable => ("card_unavailable", 409, "Card unavailable",
        "The card is blocked, replaced or already bound to someone."),
    NoProgram => ("no_program", 409, "No program",
        "The club has no program yet: PUT /v1/program first."),
    CouponUsed => ("coupon_used", 409, "Coupon already used",
        "The coupon has no uses left; releasing its redemption (order cancelled) makes it usable again."),
    CouponExpired => ("coupon_expired", 409, "Coupon expired",
        "The coupon expired, or its promotion has ended or not started yet."),
    CouponLimitReached => ("coupon_limit_reached", 409, "Coupon limit reached",
        "The promotion's limit per day/week/month, or its limit per member, is reached."),
    PromotionBudgetExhausted => ("promotion_budget_exhausted", 409, "Promotion budget exhausted",
        "The promotion's budget (redemptions or money) is spent."),
    CouponNotRedeemed => ("coupon_not_redeemed", 409, "Nothing to release",
        "The coupon has no redemption (of this order) that is not released already."),
    BodyTooLarge => ("body_too_large", 413, "Body too large",
        "The request body is larger than the server's limit."),
    UriTooLong => ("uri_too_long", 414, "Address too long",
        "The request's path and query are longer than the server reads (64 KiB). The server closes the connection."),
    UnsupportedMediaType => ("unsupported_media_type", 415, "Unsupported media type",
        "The Content-Type is not one the operation accepts (application/json; application/toml or text/plain for the program)."),
    InvalidValue => ("invalid_value", 422, "Invalid value",
        "A field is well-formed but its value is not acceptable (a phone number, an email, a currency, an amount, a date); `field` names it."),
    InvalidProgram => ("invalid_program", 422, "Invalid program",
        "The program text does not validate; `errors` lists each problem with its line and column in the submitted TOML."),
    InsufficientPoints => ("insufficient_points", 422, "Not enough points",
        "The member's spendable balance is below what the operation needs."),
    TransferToSelf => ("transfer_to_self", 422, "Transfer to self",
        "A member cannot transfer points to themselves."),
    RefundTooLarge => ("refund_too_large", 422, "Refund too large",
        "The refund asks for more than remains of the purchase."),
    CaptureTooLarge => ("capture_too_large", 422, "Capture too large",
        "The capture asks for more points than the hold reserved."),
    InvalidCouponCode => ("invalid_coupon_code", 422, "Invalid coupon code",
        "The code is not a well-formed code: a character codes never use, or a typo that its check character catches."),
    CouponNotForMember => ("coupon_not_for_member", 422, "Coupon belongs to another member",
        "The coupon is personal, and `member_id` is not its owner (or is missing)."),
    RewardUnavailable => ("reward_unavailable", 422, "Reward unavailable",
        "The member cannot have the reward now; `errors` lists each reason (`not_in_tier`, `not_in_segment`, `out_of_window`, `out_of_stock`, `limit_reached`, `insufficient_points`)."),
    WrongCurrency => ("wrong_currency", 422, "Wrong currency",
        "The purchase is not in the program's currency."),
    UnknownReferralCode => ("unknown_referral_code", 422, "Unknown referral code",
        "The referral code is not well-formed (a typo its check character catches) or belongs to no active member of the club (a member who left has no working code); `field` is `referral_code`. Nothing was written."),
    SelfReferral => ("self_referral", 422, "Self-referral",
        "The newcomer has the referrer's phone or email (or, adding a referrer later, presents their own code): a member cannot refer themselves; `field` names the field. Nothing was written."),
    ReferralLoop => ("referral_loop", 422, "Referral loop",
        "The referrer was referred by the member, directly or further down the chain: the link would make a loop; `field` is `referral_code`."),
    IdempotencyKeyReused => ("idempotency_key_reused", 422, "Idempotency-Key reused",
        "The Idempotency-Key was already used for a different request (another operation or another payload)."),
    RateLimited => ("rate_limited", 429, "Too many requests",
        "The key or the client address exceeded its rate limit; retry after `Retry-After` seconds."),
    HeadersTooLarge => ("headers_too_large", 431, "Header fields too large",
        "The request has more header fields (over 100) or larger ones (about 400 KiB in all) than the server reads. The server closes the connection."),
    Internal => ("internal_error", 500, "Internal error",
        "Something failed on the server. Nothing was stored; the call can be retried with the same Idempotency-Key."),
    Unavailable => ("unavailable", 503, "Service unavailable",
        "The database is unreachable or busy, or the request ran out of time; retry after `Retry-After` seconds with the same Idempotency-Key, which answers whatever the first attempt did, once."),
}

impl Code {
    /// The problem `type` URI: relative, resolved against the API's own address, where
    /// `/problems/{code}` redirects to the code's entry on `/docs`.
    pub fn type_uri(self) -> String {
        format!("/problems/{}", self.as_str())
    }

    pub fn parse(text: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|code| code.as_str() == text)
    }
}

/// One of several problems, e.g. each validation error of a program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProblemItem {
    /// The field or setting concerned (for a program, e.g. `tiers.levels[2].threshold`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
    /// 1-based line in the submitted text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// 1-based column, in characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// RFC 9457 problem details, with the extension members `code`, `field` and `errors`: the
/// wire form of a [`Problem`].
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Problem)]
pub struct ProblemDocument {
    /// A URI reference naming the problem type: `/problems/{code}`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// A short summary of the problem type; the same for every occurrence of a code.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time, for people.
    pub detail: String,
    /// The stable, snake_case error code programs act on.
    pub code: String,
    /// The request field at fault, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Several problems at once (program validation).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemItem>,
}

/// An error answer under construction; kept small, as every fallible handler step returns it.
#[derive(Debug, Clone)]
pub struct Problem {
    code: Code,
    detail: String,
    field: Option<String>,
    errors: Vec<ProblemItem>,
    retry_after_seconds: Option<u64>,
    /// The stored answer of an earlier identical request (`Idempotent-Replayed: true`).
    replayed: bool,
}

impl Problem {
    pub fn new(code: Code, detail: impl Into<String>) -> Problem {
        Problem {
            code,
            detail: detail.into(),
            field: None,
            errors: Vec::new(),
            retry_after_seconds: None,
            replayed: false,
        }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Problem {
        self.field = Some(field.into());
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Problem {
        self.retry_after_seconds = Some(seconds.max(1));
        self
    }

    pub fn document(&self) -> ProblemDocument {
        ProblemDocument {
            type_uri: self.code.type_uri(),
            title: self.code.title().to_string(),
            status: self.code.status().as_u16(),
            detail: self.detail.clone(),
            code: self.code.as_str().to_string(),
            field: self.field.clone(),
            errors: self.errors.clone(),
        }
    }

    pub fn internal() -> Problem {
        Problem::new(Code::Internal, Code::Internal.when())
    }

    /// The problem a business rejection answers.
    pub fn from_rejection(rejection: &Rejection) -> Problem {
        let detail = rejection.to_string();
        match rejection {
            Rejection::MemberNotFound { .. } => Problem::new(Code::MemberNotFound, detail),
            Rejection::MemberExited { .. } => Problem::new(Code::MemberExited, detail),
            Rejection::PurchaseNotFound { .. } => Problem::new(Code::PurchaseNotFound, detail),
            Rejection::RedemptionNotFound { .. } => Problem::new(Code::RedemptionNotFound, detail),
            Rejection::CardNotFound { .. } => Problem::new(Code::CardNotFound, detail),
            Rejection::CardUnavailable { .. } => Problem::new(Code::CardUnavailable, detail),
            Rejection::InsufficientPoints { .. } => {
                Problem::new(Code::InsufficientPoints, detail).with_field("points")
            }
            Rejection::TransferToSelf => {
                Problem::new(Code::TransferToSelf, detail).with_field("to_member_id")
            }
            Rejection::Duplicate { field, .. } => {
                Problem::new(Code::Duplicate, detail).with_field(field.clone())
            }
            Rejection::DocumentConflict { .. } => {
                Problem::new(Code::DocumentConflict, detail).with_field("document_id")
            }
            Rejection::AlreadyAttached { .. } => Problem::new(Code::AlreadyAttached, detail),
            Rejection::RefundTooLarge { .. } => {
                Problem::new(Code::RefundTooLarge, detail).with_field("lines")
            }
            Rejection::RedemptionResolved { .. } => Problem::new(Code::RedemptionResolved, detail),
            Rejection::CaptureTooLarge { .. } => {
                Problem::new(Code::CaptureTooLarge, detail).with_field("points")
            }
            Rejection::WrongCurrency { .. } => {
                Problem::new(Code::WrongCurrency, detail).with_field("currency")
            }
            Rejection::NoProgram { .. } => Problem::new(Code::NoProgram, detail),
            Rejection::RewardNotFound { .. } => {
                Problem::new(Code::RewardNotFound, detail).with_field("reward_id")
            }
            Rejection::RewardUnavailable { reasons, .. } => {
                let mut problem = Problem::new(Code::RewardUnavailable, detail);
                problem.errors = reasons
                    .iter()
                    .map(|reason| ProblemItem {
                        field: Some("reward_id".into()),
                        message: reason.clone(),
                        line: None,
                        column: None,
                        hint: None,
                    })
                    .collect();
                problem.with_field("reward_id")
            }
            Rejection::InvalidCouponCode { .. } => {
                Problem::new(Code::InvalidCouponCode, detail).with_field("code")
            }
            Rejection::CouponNotFound { .. } => Problem::new(Code::CouponNotFound, detail),
            Rejection::CouponRefused { reason, .. } => {
                let code = match reason.as_str() {
                    "used" => Code::CouponUsed,
                    "expired" | "not_started" => Code::CouponExpired,
                    "not_for_member" => Code::CouponNotForMember,
                    "budget_exhausted" => Code::PromotionBudgetExhausted,
                    "member_exited" => Code::MemberExited,
                    _ => Code::CouponLimitReached,
                };
                Problem::new(code, detail)
            }
            Rejection::CouponNotRedeemed { .. } => Problem::new(Code::CouponNotRedeemed, detail),
            Rejection::PromotionNotFound { .. } => Problem::new(Code::PromotionNotFound, detail),
            Rejection::UnknownReferralCode { .. } => {
                Problem::new(Code::UnknownReferralCode, detail).with_field("referral_code")
            }
            Rejection::SelfReferral { field } => {
                Problem::new(Code::SelfReferral, detail).with_field(field.clone())
            }
            Rejection::ReferralNotAllowed { .. } => Problem::new(Code::ReferralNotAllowed, detail),
            Rejection::ReferralLoop { .. } => {
                Problem::new(Code::ReferralLoop, detail).with_field("referral_code")
            }
        }
    }

    fn from_store(error: &StoreError) -> Problem {
        match error {
            StoreError::Rejected(rejection) => Problem::from_rejection(rejection),
            StoreError::IdempotencyMismatch { key } => Problem::from_mismatch(key),
            StoreError::Invalid { field, message } => {
                Problem::new(Code::InvalidValue, format!("{field}: {message}"))
                    .with_field(field.clone())
            }
            error if error.is_unavailable() => {
                tracing::warn!(%error, "storage unavailable");
                Problem::new(
                    Code::Unavailable,
                    "the database is busy; nothing was stored, retry shortly",
                )
                .with_retry_after(1)
            }
            StoreError::Conflict(_)
            | StoreError::ProgramChanged { .. }
            | StoreError::ClaimTaken
            | StoreError::TakeLockedPath
            | StoreError::Config(_)
            | StoreError::Database(_)
            | StoreError::Corrupt(_)
            | StoreError::Serialization(_) => {
                tracing::error!(%error, "request failed in storage");
                Problem::internal()
            }
        }
    }

    /// A key reused with another request: a shop's document id posted twice with different
    /// content is a conflict with that document; a client's Idempotency-Key reused is a
    /// client error.
    fn from_mismatch(key: &str) -> Problem {
        if let Some(document) = key.strip_prefix(patron_engine::model::DOCUMENT_KEY_PREFIX) {
            let document_id = document.split_once(':').map_or(document, |(_, id)| id);
            return Problem::new(
                Code::DocumentConflict,
                format!("document {document_id} was already posted with different content"),
            )
            .with_field("document_id");
        }
        let key = key.strip_prefix("client:").unwrap_or(key);
        Problem::new(
            Code::IdempotencyKeyReused,
            format!("Idempotency-Key {key:?} was already used for a different request"),
        )
        .with_field("Idempotency-Key")
    }
}

impl From<EngineError> for Problem {
    fn from(error: EngineError) -> Problem {
        match error {
            EngineError::Invalid { field, message } if field == "Idempotency-Key" => Problem::new(
                Code::InvalidIdempotencyKey,
                format!("Idempotency-Key {message}"),
            )
            .with_field(field),
            EngineError::Invalid { field, message } => {
                Problem::new(Code::InvalidValue, format!("{field}: {message}")).with_field(field)
            }
            EngineError::Program(diagnostics) => {
                let mut problem = Problem::new(
                    Code::InvalidProgram,
                    format!("the program has {} error(s)", diagnostics.len()),
                );
                problem.errors = diagnostics
                    .into_iter()
                    .map(|d| ProblemItem {
                        field: (!d.path.is_empty()).then_some(d.path),
                        message: d.message,
                        line: u64::try_from(d.line).ok(),
                        column: u64::try_from(d.column).ok(),
                        hint: d.hint,
                    })
                    .collect();
                problem
            }
            EngineError::Rejected(rejection) => Problem::from_rejection(&rejection),
            EngineError::ReplayedRejection(rejection) => {
                let mut problem = Problem::from_rejection(&rejection);
                problem.replayed = true;
                problem
            }
            EngineError::TenantNotFound(name) => {
                Problem::new(Code::TenantNotFound, format!("club {name:?} not found"))
            }
            EngineError::IdempotencyMismatch { key } => Problem::from_mismatch(&key),
            EngineError::Store(error) => Problem::from_store(&error),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let body = serde_json::to_vec(&self.document()).unwrap_or_else(|_| b"{}".to_vec());
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        );
        if let Some(seconds) = self.retry_after_seconds
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            headers.insert(header::RETRY_AFTER, value);
        }
        if self.replayed {
            headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
        }
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"patron\""),
            );
        }
        response
    }
}
