//! Success metrics and lifetime value over HTTP: the metrics of a small March against the
//! coffee chain's targets, every bad parameter refused with its field, scopes, and the CLV
//! fit and a member's CLV before and after the `clv` job.

use jiff::{SignedDuration, Timestamp};
use patron_engine::jobs::{JobKind, Worker};
use patron_engine::{EnrollRequest, ProfileFields, PurchaseLineRequest, PurchaseRequest};
use serde_json::{Value, json};

use crate::support::{clubs, purchase};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_answer_each_period_against_the_targets_and_refuse_bad_parameters() {
    for club in clubs().await {
        let (api, l) = (&club.api, club.label());
        let member = club.enroll("metrics-1").await;
        // $10 by the member, $30 anonymous: 25% identified.
        api.post(
            "/v1/purchases",
            &club.pos,
            purchase("m-1", Some(&member), 1_000),
        )
        .await
        .assert_status(201);
        api.post("/v1/purchases", &club.pos, purchase("m-2", None, 3_000))
            .await
            .assert_status(201);

        let path = "/v1/analytics/metrics?period=month&from=2026-03-01&to=2026-03-31";
        let answer = api.get(path, &club.read).await;
        let body = answer.assert_status(200).clone();
        assert_eq!(body["period"], "month", "[{l}]");
        assert_eq!(body["time_zone"], "America/New_York");
        assert_eq!(body["activity_period"], "month");
        assert_eq!(body["cost_per_point"], "0.02");
        assert_eq!(body["store"], Value::Null);
        let periods = body["periods"].as_array().unwrap();
        assert_eq!(periods.len(), 1);
        let march = &periods[0];
        assert_eq!(march["first_day"], "2026-03-01");
        assert_eq!(march["last_day"], "2026-03-31");
        assert_eq!(march["revenue_minor"], 4_000, "[{l}]");
        assert_eq!(march["identified_revenue_minor"], 1_000);
        assert_eq!(
            march["identified_revenue_pct"],
            json!({ "value": 25.0, "target": 60.0, "meets": false, "higher_is_better": true })
        );
        assert_eq!(
            march["enrollments"],
            json!({ "value": 1.0, "target": 250.0, "meets": false, "higher_is_better": true })
        );
        assert_eq!(march["active_members"], 1);
        assert_eq!(march["members_at_end"], 1);
        assert_eq!(march["active_pct"]["value"], 100.0);
        assert_eq!(
            march["churn_pct"]["value"],
            Value::Null,
            "[{l}] nobody was active before"
        );
        assert_eq!(march["churn_pct"]["higher_is_better"], false);
        assert_eq!(march["redemption_pct"]["value"], Value::Null);
        let closing = march["points"]["closing"].as_i64().unwrap();
        assert_eq!(closing, club.available(&member).await, "[{l}]");
        assert!(closing > 0);
        // Beans cost 2 cents each.
        let liability = march["liability"]["value"].as_f64().unwrap();
        assert!(
            (liability - closing as f64 * 0.02).abs() < 1e-9,
            "[{l}] {liability}"
        );
        assert_eq!(march["liability"]["meets"], true);

        // Narrowed to a store nobody bought at: no revenue, no value.
        let answer = api
            .get(
                "/v1/analytics/metrics?from=2026-03-01&to=2026-03-01&store=store-9",
                &club.admin,
            )
            .await;
        let other = answer.assert_status(200);
        assert_eq!(other["store"], "store-9");
        assert_eq!(other["periods"][0]["revenue_minor"], 0);
        assert_eq!(
            other["periods"][0]["identified_revenue_pct"]["value"],
            Value::Null
        );

        // Days and weeks.
        let days = api
            .get(
                "/v1/analytics/metrics?period=day&from=2026-03-01&to=2026-03-07",
                &club.read,
            )
            .await;
        assert_eq!(
            days.assert_status(200)["periods"].as_array().unwrap().len(),
            7
        );
        let weeks = api
            .get(
                "/v1/analytics/metrics?period=week&from=2026-03-01&to=2026-03-07",
                &club.read,
            )
            .await;
        let weeks = weeks.assert_status(200);
        assert_eq!(
            weeks["periods"][0]["first_day"], "2026-02-23",
            "weeks start on Monday"
        );

        // Without dates: the last 12 months, 12 weeks or 30 days up to today.
        for (query, count) in [("", 12), ("period=week", 12), ("period=day", 30)] {
            let answer = api
                .get(&format!("/v1/analytics/metrics?{query}"), &club.read)
                .await;
            assert_eq!(
                answer.assert_status(200)["periods"]
                    .as_array()
                    .unwrap()
                    .len(),
                count,
                "[{l}] {query}"
            );
        }

        // Bad parameters: 400 with the field.
        for (query, field) in [
            ("period=year&from=2026-03-01&to=2026-03-31", "period"),
            ("from=2026-13-01&to=2026-03-31", "from"),
            ("from=2026-03-01&to=yesterday", "to"),
            ("from=2026-03-02&to=2026-03-01", "to"),
            ("period=day&from=2024-01-01&to=2026-03-01", "to"),
            ("from=2026-03-01&to=2026-03-02&shop=1", "shop"),
        ] {
            let answer = api
                .get(&format!("/v1/analytics/metrics?{query}"), &club.read)
                .await;
            answer.assert_problem(400, "invalid_parameter");
            assert_eq!(
                answer.body["field"], field,
                "[{l}] {query}: {}",
                answer.text
            );
        }
        let long = api
            .get(
                "/v1/analytics/metrics?period=day&from=2024-01-01&to=2026-03-01",
                &club.read,
            )
            .await;
        assert!(
            long.body["detail"]
                .as_str()
                .unwrap()
                .contains("at most 400")
        );

        // Scopes: admin and read, not pos.
        api.get(path, &club.pos)
            .await
            .assert_problem(403, "insufficient_scope");
        api.get("/v1/analytics/clv", &club.pos)
            .await
            .assert_problem(403, "insufficient_scope");
        club.stop().await;
    }
}

/// Member `i`'s purchases: (days after 5 January 2026, amount in cents).
fn history(i: i64) -> Vec<(i64, i64)> {
    let first = i % 14;
    let gap = 3 + (i * 5) % 11;
    let count = 1 + (i * 7) % 6;
    (0..count)
        .map(|k| (first + k * gap, 1_000 + 137 * i + 61 * k))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clv_fit_and_a_members_clv_appear_after_the_job() {
    for club in clubs().await {
        let (api, l) = (&club.api, club.label());
        let (engine, tenant) = (&club.engine, &club.tenant);
        let first = club.enroll("clv-0").await;

        // Before any fit: nulls, not errors.
        let fit = api.get("/v1/analytics/clv", &club.read).await;
        assert_eq!(fit.assert_status(200), &json!({ "fit": null }), "[{l}]");
        let path = format!("/v1/members/{first}/clv");
        let none = api.get(&path, &club.read).await;
        assert_eq!(
            none.assert_status(200),
            &json!({ "member_id": first, "clv": null })
        );
        api.get("/v1/members/mem_nobody/clv", &club.read)
            .await
            .assert_problem(404, "member_not_found");
        api.get(&path, &club.other)
            .await
            .assert_problem(404, "member_not_found");
        api.get(&path, &club.pos)
            .await
            .assert_problem(403, "insufficient_scope");

        // Thirty members with histories (back-dated purchases, within the 90 days the program
        // allows and all before the clock), then the job.
        let base: Timestamp = "2025-12-10T17:00:00Z".parse().unwrap();
        let mut members = vec![first.clone()];
        for i in 1..30 {
            let request = EnrollRequest {
                profile: ProfileFields {
                    external_id: Some(format!("clv-{i}")),
                    ..ProfileFields::default()
                },
                channel: "pos".into(),
                card_number: None,
                consents: vec![],
            };
            members.push(
                engine
                    .enroll(tenant, &request, None)
                    .await
                    .unwrap()
                    .value
                    .id,
            );
        }
        for (i, member) in members.iter().enumerate() {
            let i = i64::try_from(i).unwrap();
            for (k, (day, amount)) in history(i).into_iter().enumerate() {
                let request = PurchaseRequest {
                    document_id: format!("clv-{i}-{k}"),
                    member_id: Some(member.clone()),
                    store_id: "store-1".into(),
                    channel: "pos".into(),
                    occurred_at: Some(
                        base.checked_add(SignedDuration::from_hours(24 * day))
                            .unwrap(),
                    ),
                    currency: "USD".into(),
                    lines: vec![PurchaseLineRequest {
                        sku: "LATTE".into(),
                        category: "drinks".into(),
                        quantity: "1".into(),
                        unit_price_minor: amount,
                        discount_minor: 0,
                    }],
                };
                engine.post_purchase(tenant, &request, None).await.unwrap();
            }
        }
        let worker = Worker::new(SignedDuration::from_secs(60));
        let report = engine
            .run_job_now(tenant, JobKind::Clv, &worker)
            .await
            .unwrap();
        assert!(report.outcome.is_ok(), "[{l}] {report:?}");

        let fit = api.get("/v1/analytics/clv", &club.admin).await;
        let fit = fit.assert_status(200)["fit"].clone();
        let run = engine.latest_clv(tenant).await.unwrap().unwrap();
        let club_ids = patron_http::ids::ClubIds::new(&tenant.id_key);
        assert_eq!(fit["run_id"], club_ids.clv_run(run.id).as_str(), "[{l}]");
        assert_eq!(fit["customers"], 30);
        assert_eq!(fit["members"], 30);
        assert_eq!(fit["as_of"], "2026-03-02");
        // The coffee chain's [analytics]: a year ahead, 1% a month, 65% margin.
        assert_eq!(fit["horizon_weeks"], 52);
        assert_eq!(fit["monthly_discount_pct"], "1");
        assert_eq!(fit["margin_pct"], "65");
        assert_eq!(fit["bgnbd"]["r"], run.bgnbd.r);
        assert_eq!(fit["bgnbd_log_likelihood"], run.bgnbd_log_likelihood);
        assert!(fit["gamma_gamma"]["params"]["p"].as_f64().unwrap() > 0.0);

        let answer = api.get(&path, &club.read).await;
        let clv = answer.assert_status(200)["clv"].clone();
        let stored = engine.member_clv(tenant, &first).await.unwrap().unwrap();
        assert_eq!(clv["run_id"], club_ids.clv_run(run.id).as_str());
        assert_eq!(clv["p_alive"], stored.prediction.p_alive, "[{l}]");
        assert_eq!(
            clv["expected_purchases"],
            json!(stored.prediction.expected_purchases)
        );
        assert_eq!(clv["clv"], json!(stored.prediction.clv));
        assert_eq!(clv["x"], stored.prediction.x);
        club.stop().await;
    }
}
