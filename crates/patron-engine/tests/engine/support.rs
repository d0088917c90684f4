//! Shared fixtures: a club on each backend with a controlled clock, small program files
//! written inline, and snapshots that show a rejected call wrote nothing.

use std::sync::{Arc, LazyLock};

use jiff::{SignedDuration, Timestamp, Zoned};
use patron_engine::{
    AdjustRequest, Engine, EngineError, EnrollRequest, JobReport, ManualClock, ProfileFields,
    PurchaseLineRequest, PurchaseRequest, RedeemRequest, RefundLineRequest, RefundRequest,
};
use patron_store::Rejection;
use patron_store::purchases::PurchaseReceipt;
use patron_store::redemptions::Balance;
use patron_store::tenants::Tenant;
use patron_store::testing::{self, TestDatabase};

/// The coffee chain example, exactly as shipped (with its earning rules and join gift).
pub const COFFEE_EXAMPLE: &str = include_str!("../../../../examples/programs/coffee-chain.toml");
/// The coffee chain as the ledger tests use it: its join gift ended in 2000, so that a new
/// member's balance starts at 0 and the tests' counts stay exact. The rule tests use
/// [`COFFEE_EXAMPLE`].
pub static COFFEE: LazyLock<String> = LazyLock::new(|| {
    let source = COFFEE_EXAMPLE.replace(
        "kind = \"join\"\npoints = 25",
        "kind = \"join\"\npoints = 25\nuntil = 2000-01-01",
    );
    assert_ne!(
        source, COFFEE_EXAMPLE,
        "the example's join gift moved: update the tests"
    );
    source
});
pub const PERSIAN: &str = include_str!("../../../../examples/programs/persian-retail.toml");
pub const PHARMACY: &str = include_str!("../../../../examples/programs/israeli-pharmacy.toml");

/// The time zone of every inline test program (and of the coffee chain).
pub const ZONE: &str = "America/New_York";

/// A club ready for use cases.
pub struct Club {
    pub db: TestDatabase,
    pub engine: Engine,
    pub clock: ManualClock,
    pub tenant: Tenant,
}

/// What a rejected call must leave as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub accounts: u64,
    pub transfers: u64,
    pub lots: u64,
    pub members: i64,
    pub audit_entries: usize,
    pub balances: Vec<Balance>,
}

impl Club {
    pub fn label(&self) -> &'static str {
        label(&self.db)
    }

    pub async fn enroll(&self, external_id: &str) -> String {
        let request = EnrollRequest {
            profile: ProfileFields {
                external_id: Some(external_id.into()),
                ..ProfileFields::default()
            },
            channel: "pos".into(),
            card_number: None,
            consents: vec![],
        };
        self.engine
            .enroll(&self.tenant, &request, None)
            .await
            .unwrap()
            .value
            .id
    }

    /// A purchase of one line for `amount_minor` in the program's currency.
    pub fn purchase(
        &self,
        document_id: &str,
        member_id: Option<&str>,
        amount_minor: i64,
        currency: &str,
    ) -> PurchaseRequest {
        purchase_request(document_id, member_id, "1", amount_minor, currency)
    }

    /// Posts a one-line USD purchase of `quantity` items at `unit_minor` each.
    pub async fn buy(
        &self,
        document_id: &str,
        member_id: &str,
        quantity: &str,
        unit_minor: i64,
    ) -> PurchaseReceipt {
        let request = purchase_request(document_id, Some(member_id), quantity, unit_minor, "USD");
        self.engine
            .post_purchase(&self.tenant, &request, None)
            .await
            .unwrap()
            .value
    }

    /// Refunds `quantity` of line 1 (None: everything that remains).
    pub async fn refund(
        &self,
        purchase_id: &str,
        document_id: &str,
        quantity: Option<&str>,
    ) -> Result<patron_store::purchases::RefundReceipt, EngineError> {
        let request = refund_request(document_id, quantity);
        self.engine
            .refund(&self.tenant, purchase_id, &request, None)
            .await
            .map(|r| r.value)
    }

    pub async fn redeem(
        &self,
        member_id: &str,
        points: i64,
    ) -> Result<patron_store::redemptions::Redemption, EngineError> {
        let request = RedeemRequest {
            points,
            hold: false,
            hold_minutes: None,
            description: None,
        };
        self.engine
            .redeem(&self.tenant, member_id, &request, None)
            .await
            .map(|r| r.value)
    }

    pub async fn hold(
        &self,
        member_id: &str,
        points: i64,
        minutes: i64,
    ) -> Result<patron_store::redemptions::Redemption, EngineError> {
        let request = RedeemRequest {
            points,
            hold: true,
            hold_minutes: Some(minutes),
            description: None,
        };
        self.engine
            .redeem(&self.tenant, member_id, &request, None)
            .await
            .map(|r| r.value)
    }

    /// Credits points with an audited adjustment.
    pub async fn grant(&self, member_id: &str, points: i64) {
        let request = AdjustRequest {
            points,
            reason: "test grant".into(),
        };
        self.engine
            .adjust(&self.tenant, member_id, &request, "tester", None)
            .await
            .unwrap();
    }

    pub async fn balance(&self, member_id: &str) -> Balance {
        self.engine.balance(&self.tenant, member_id).await.unwrap()
    }

    pub async fn available(&self, member_id: &str) -> i64 {
        self.balance(member_id).await.available
    }

    /// Moves the clock by `hours` and runs the due jobs.
    pub async fn advance_hours(&self, hours: i64) -> JobReport {
        self.clock.advance(SignedDuration::from_hours(hours));
        self.engine.run_due_jobs(&self.tenant).await.unwrap()
    }

    /// Sets the clock to `instant` and runs the due jobs.
    pub async fn jump_to(&self, instant: Timestamp) -> JobReport {
        self.clock.set(instant);
        self.engine.run_due_jobs(&self.tenant).await.unwrap()
    }

    pub async fn verify(&self) {
        let report = self
            .engine
            .store()
            .verify_ledger(self.tenant.id, self.engine.now())
            .await
            .unwrap();
        assert!(
            report.is_clean(),
            "[{}] ledger verify: {:?}",
            self.label(),
            report.discrepancies
        );
    }

    /// Counts of everything a rejected call could have written, and these members' balances.
    pub async fn snapshot(&self, members: &[&str]) -> Snapshot {
        let store = self.engine.store();
        let report = store
            .verify_ledger(self.tenant.id, self.engine.now())
            .await
            .unwrap();
        assert!(
            report.is_clean(),
            "[{}] ledger verify: {:?}",
            self.label(),
            report.discrepancies
        );
        let mut balances = Vec::with_capacity(members.len());
        for member in members {
            balances.push(self.balance(member).await);
        }
        Snapshot {
            accounts: report.accounts,
            transfers: report.transfers,
            lots: report.lots,
            members: store.count_members(self.tenant.id).await.unwrap(),
            audit_entries: store
                .audit_log(self.tenant.id, None, 1000)
                .await
                .unwrap()
                .len(),
            balances,
        }
    }
}

pub fn label(db: &TestDatabase) -> &'static str {
    match db.backend() {
        patron_store::Backend::Sqlite => "sqlite",
        patron_store::Backend::Postgres => "postgres",
    }
}

pub fn purchase_request(
    document_id: &str,
    member_id: Option<&str>,
    quantity: &str,
    unit_minor: i64,
    currency: &str,
) -> PurchaseRequest {
    PurchaseRequest {
        document_id: document_id.into(),
        member_id: member_id.map(str::to_string),
        store_id: "store-1".into(),
        channel: "pos".into(),
        occurred_at: None,
        currency: currency.into(),
        lines: vec![PurchaseLineRequest {
            sku: "SKU-1".into(),
            category: "general".into(),
            quantity: quantity.into(),
            unit_price_minor: unit_minor,
            discount_minor: 0,
        }],
    }
}

pub fn refund_request(document_id: &str, quantity: Option<&str>) -> RefundRequest {
    RefundRequest {
        document_id: document_id.into(),
        lines: quantity.map(|q| {
            vec![RefundLineRequest {
                line_no: 1,
                quantity: q.into(),
            }]
        }),
        occurred_at: None,
    }
}

/// The business rejection inside an engine error, or a panic naming what came instead.
pub fn rejection<T: std::fmt::Debug>(result: Result<T, EngineError>) -> Rejection {
    match result {
        Err(EngineError::Rejected(rejection) | EngineError::ReplayedRejection(rejection)) => {
            rejection
        }
        other => panic!("expected a business rejection, got {other:?}"),
    }
}

/// The field an `EngineError::Invalid` names, or a panic naming what came instead.
pub fn invalid_field<T: std::fmt::Debug>(result: Result<T, EngineError>) -> String {
    match result {
        Err(EngineError::Invalid { field, .. }) => field,
        other => panic!("expected an invalid-request error, got {other:?}"),
    }
}

/// The instant tests start at: a Monday noon in New York.
pub fn start() -> Timestamp {
    "2026-03-02T17:00:00Z".parse().unwrap()
}

/// A civil date-time in New York (`"2026-04-01T00:00"`) as an instant.
pub fn ny(civil: &str) -> Timestamp {
    format!("{civil}[{ZONE}]")
        .parse::<Zoned>()
        .unwrap()
        .timestamp()
}

/// An inline program in USD, New York time, 1 point per dollar, with these sections. `expiry`
/// is the body of the `[expiry]` table; `pending_days` 0 leaves `[pending]` out.
pub fn program(pending_days: u32, expiry: &str, returns: &str, exit: &str) -> String {
    let pending = if pending_days > 0 {
        format!("[pending]\ndays = {pending_days}\n\n")
    } else {
        String::new()
    };
    format!(
        "[club]\nname = \"Test Club\"\ndefault_locale = \"en\"\ncurrency = \"USD\"\ntime_zone = \"{ZONE}\"\n\n\
         [earning]\npoints_per_unit = \"1\"\nrounding = \"down\"\n\n\
         {pending}\
         [expiry]\n{expiry}\n\n\
         [returns]\npolicy = \"{returns}\"\n\n\
         [exit]\npolicy = \"{exit}\"\n\n\
         [cards]\nprefix = \"42\"\n"
    )
}

/// A club per backend with its own engine and clock.
pub async fn club_on(db: TestDatabase, program: &str) -> Club {
    let clock = ManualClock::new(start());
    let engine = Engine::new(db.store.clone(), Arc::new(clock.clone()));
    let (tenant, _, _) = engine.apply_program("club", program, "test").await.unwrap();
    Club {
        db,
        engine,
        clock,
        tenant,
    }
}

/// One club per available backend, running `program`.
pub async fn clubs(program: &str) -> Vec<Club> {
    let mut clubs = Vec::new();
    for db in testing::all().await {
        clubs.push(club_on(db, program).await);
    }
    clubs
}
