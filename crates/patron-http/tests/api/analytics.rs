//! Segments and analytics over HTTP: the RFV grid of the latest run with localized names,
//! segments with member counts, a segment's members a page at a time, basket pairs, scopes,
//! and bad parameters.

use serde_json::json;

use crate::support::clubs;

fn purchase(
    document: &str,
    member: &str,
    lines: &[(&str, &str)],
    unit_minor: i64,
) -> serde_json::Value {
    let lines: Vec<serde_json::Value> = lines
        .iter()
        .map(|(sku, category)| {
            json!({ "sku": sku, "category": category, "quantity": "1", "unit_price_minor": unit_minor })
        })
        .collect();
    json!({
        "document_id": document,
        "member_id": member,
        "store_id": "store-1",
        "channel": "pos",
        "currency": "USD",
        "lines": lines,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfv_segments_members_and_baskets() {
    for club in clubs().await {
        let l = club.label();
        let api = &club.api;
        // No run yet.
        api.get("/v1/analytics/rfv", &club.read)
            .await
            .assert_problem(404, "no_rfv_run");
        let mut members = Vec::new();
        for i in 0..8 {
            members.push(club.enroll(&format!("a{i}")).await);
        }
        for (i, member) in members.iter().enumerate() {
            for k in 0..=(i % 3) {
                let lines: &[(&str, &str)] = if k % 2 == 0 {
                    &[("LATTE", "coffee"), ("CROISSANT", "pastry")]
                } else {
                    &[("LATTE", "coffee")]
                };
                api.post(
                    "/v1/purchases",
                    &club.pos,
                    purchase(&format!("d{i}-{k}"), member, lines, 300 + 100 * i as i64),
                )
                .await
                .assert_status(201);
            }
        }
        club.engine.run_segments(&club.tenant, None).await.unwrap();

        let rfv = api.get("/v1/analytics/rfv", &club.read).await;
        let rfv = rfv.assert_status(200).clone();
        assert_eq!(rfv["members"], 8, "[{l}]");
        assert_eq!(rfv["cells"].as_array().unwrap().len(), 25, "[{l}]");
        let total: i64 = rfv["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["members"].as_i64().unwrap())
            .sum();
        assert_eq!(total, 8, "[{l}]");
        assert_eq!(rfv["cells"][4]["segment"], "champions", "[{l}]");
        assert_eq!(rfv["cells"][4]["segment_name"], "Bean Legends", "[{l}]");
        let run_id = rfv["run_id"].as_str().unwrap();
        api.get(
            &format!("/v1/analytics/rfv?run={run_id}&locale=en"),
            &club.admin,
        )
        .await
        .assert_status(200);
        api.get("/v1/analytics/rfv?run=999999", &club.read)
            .await
            .assert_problem(404, "no_rfv_run");
        api.get("/v1/analytics/rfv?locale=xx", &club.read)
            .await
            .assert_problem(400, "invalid_parameter");
        api.get("/v1/analytics/rfv", &club.pos)
            .await
            .assert_problem(403, "insufficient_scope");
        // Another club's key sees its own (empty) analytics.
        api.get("/v1/analytics/rfv", &club.other)
            .await
            .assert_problem(404, "no_rfv_run");

        let segments = api.get("/v1/segments", &club.read).await;
        let segments = segments.assert_status(200).clone();
        let list = segments["data"].as_array().unwrap();
        let rfv_total: i64 = list
            .iter()
            .filter(|s| s["kind"] == "rfv")
            .map(|s| s["members"].as_i64().unwrap())
            .sum();
        assert_eq!(rfv_total, 8, "[{l}]");
        let partial = list.iter().find(|s| s["id"] == "partial_basket").unwrap();
        assert_eq!(partial["kind"], "rule", "[{l}]");
        assert_eq!(partial["name"], "Coffee only", "[{l}]");

        // The members of the biggest RFV segment, a page at a time (pages of 3 in tests).
        let biggest = list
            .iter()
            .filter(|s| s["kind"] == "rfv")
            .max_by_key(|s| s["members"].as_i64().unwrap())
            .unwrap();
        let mut seen = Vec::new();
        let mut path = format!("/v1/segments/{}/members", biggest["id"].as_str().unwrap());
        loop {
            let page = api.get(&path, &club.read).await;
            let page = page.assert_status(200).clone();
            for member in page["data"].as_array().unwrap() {
                assert!(member["r"].is_i64(), "[{l}]");
                seen.push(member["member_id"].as_str().unwrap().to_owned());
            }
            match page["next_cursor"].as_str() {
                Some(cursor) => {
                    path = format!(
                        "/v1/segments/{}/members?cursor={cursor}",
                        biggest["id"].as_str().unwrap()
                    )
                }
                None => break,
            }
        }
        assert_eq!(
            seen.len() as i64,
            biggest["members"].as_i64().unwrap(),
            "[{l}]"
        );
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(seen, sorted, "[{l}]");
        api.get("/v1/segments/best_customers/members", &club.admin)
            .await
            .assert_status(200);
        // An unknown segment has its own code: `not_found` means no such route.
        api.get("/v1/segments/nope/members", &club.read)
            .await
            .assert_problem(404, "segment_not_found");
        api.get("/v1/segments/dormant/members?cursor=zz", &club.read)
            .await
            .assert_problem(400, "invalid_cursor");

        let baskets = api
            .get("/v1/analytics/baskets?min_support=0.1", &club.read)
            .await;
        let baskets = baskets.assert_status(200).clone();
        assert_eq!(baskets["level"], "category", "[{l}]");
        let pair = &baskets["pairs"][0];
        assert_eq!(
            (pair["a"].as_str(), pair["b"].as_str()),
            (Some("coffee"), Some("pastry")),
            "[{l}]"
        );
        assert!(pair["lift"].as_f64().unwrap() > 0.0, "[{l}]");
        let next = baskets["next"].as_array().unwrap();
        assert!(next.iter().any(|n| n["category"] == "coffee"), "[{l}]");
        api.get(
            "/v1/analytics/baskets?level=sku&since=2000-01-01",
            &club.admin,
        )
        .await
        .assert_status(200);
        api.get("/v1/analytics/baskets?min_support=0", &club.read)
            .await
            .assert_problem(400, "invalid_parameter");
        api.get("/v1/analytics/baskets?level=aisle", &club.read)
            .await
            .assert_problem(400, "invalid_parameter");
        api.get("/v1/analytics/baskets?since=yesterday", &club.read)
            .await
            .assert_problem(400, "invalid_parameter");
        api.get("/v1/segments", &club.pos)
            .await
            .assert_problem(403, "insufficient_scope");
        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfv_says_when_there_is_no_run_and_reads_the_run_as_of_a_date() {
    for club in clubs().await {
        let l = club.label();
        let api = &club.api;
        // A new club has no run: its own code, not the route-not-found one.
        let none = api.get("/v1/analytics/rfv", &club.read).await;
        none.assert_problem(404, "no_rfv_run");
        let detail = none.body["detail"].as_str().unwrap();
        assert!(
            detail.contains("patron jobs run-now segments"),
            "[{l}] {detail}"
        );
        api.get("/v1/analytics/rfv?as_of=2026-03-01", &club.read)
            .await
            .assert_problem(404, "no_rfv_run");

        for i in 0..3 {
            let member = club.enroll(&format!("asof-{i}")).await;
            api.post(
                "/v1/purchases",
                &club.pos,
                purchase(&format!("asof-{i}"), &member, &[("LATTE", "coffee")], 400),
            )
            .await
            .assert_status(201);
        }
        // A run as of an earlier day (before the purchases), then tonight's run.
        club.engine
            .run_rfv(&club.tenant, Some(jiff::civil::date(2026, 2, 20)))
            .await
            .unwrap();
        club.engine.run_segments(&club.tenant, None).await.unwrap();

        let latest = api.get("/v1/analytics/rfv", &club.read).await;
        let latest = latest.assert_status(200).clone();
        assert_eq!(
            (latest["as_of"].as_str(), latest["members"].as_i64()),
            (Some("2026-03-02"), Some(3)),
            "[{l}]"
        );
        let earlier = api
            .get("/v1/analytics/rfv?as_of=2026-02-25", &club.read)
            .await;
        let earlier = earlier.assert_status(200).clone();
        assert_eq!(
            (earlier["as_of"].as_str(), earlier["members"].as_i64()),
            (Some("2026-02-20"), Some(0)),
            "[{l}]"
        );
        let same_day = api
            .get("/v1/analytics/rfv?as_of=2026-03-02&locale=en", &club.admin)
            .await;
        assert_eq!(
            same_day.assert_status(200)["run_id"],
            latest["run_id"],
            "[{l}]"
        );
        api.get("/v1/analytics/rfv?as_of=2026-02-19", &club.read)
            .await
            .assert_problem(404, "no_rfv_run");
        api.get("/v1/analytics/rfv?run=999999", &club.read)
            .await
            .assert_problem(404, "no_rfv_run");
        let bad = api
            .get("/v1/analytics/rfv?as_of=02/25/2026", &club.read)
            .await;
        bad.assert_problem(400, "invalid_parameter");
        assert_eq!(bad.body["field"], "as_of", "[{l}]");
        let both = api
            .get(
                &format!(
                    "/v1/analytics/rfv?as_of=2026-03-02&run={}",
                    latest["run_id"]
                ),
                &club.read,
            )
            .await;
        both.assert_problem(400, "invalid_parameter");
        club.stop().await;
    }
}
