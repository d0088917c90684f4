//! Custom events: recorded for a member, credited by the program's `event` rules.

use patron_domain::rules::{RuleUsage, Trigger, TriggerKind};
use patron_store::members::Member;
use patron_store::rules::{EventReceipt, NewEvent};
use patron_store::tenants::Tenant;

use crate::{
    Engine, EventRequest, Outcome, check_time, claims, new_id, request_hash, rules,
    unwrap_idempotent, validate_idempotency_key,
};

impl Engine {
    /// Records a custom event for a member and credits what the program's `event` rules give
    /// (posted at once, with a lot). Idempotent by the key when given.
    pub async fn post_event(
        &self,
        tenant: &Tenant,
        request: &EventRequest,
        idempotency_key: Option<&str>,
    ) -> Outcome<EventReceipt> {
        validate_idempotency_key(idempotency_key)?;
        request.validate()?;
        let program = self.program(tenant).await?.program;
        let hash = request_hash("event.post", request)?;
        let claims = claims(idempotency_key, "event.post", &hash);
        let now = self.now();
        let occurred_at = request.occurred_at.unwrap_or(now);
        check_time(&program, occurred_at, now)?;
        let event = NewEvent {
            id: new_id("evt"),
            member_id: request.member_id.clone(),
            event_type: request.event_type.clone(),
            occurred_at,
            properties: serde_json::Value::Object(request.properties.clone()).to_string(),
            request_hash: hash,
        };
        let facts = rules::event_facts(&request.event_type, occurred_at, &request.properties);
        let reads = rules::read_member(
            &self.store,
            tenant.id,
            &program,
            TriggerKind::Event,
            &request.member_id,
        )
        .await?;
        let failures = rules::Failures::default();
        let decide = |member: &Member, usage: &RuleUsage| {
            let (grant, failed) =
                rules::grant(&program, member, &reads, Trigger::Event(&facts), now, usage);
            failures.set(failed);
            grant
        };
        let result = self
            .store
            .post_event(tenant.id, &program, &event, &decide, &claims, now)
            .await?;
        if !result.replayed {
            self.report_rule_failures(failures.take());
        }
        unwrap_idempotent(result)
    }
}
