//! The program over HTTP: read it, apply a new version, and refuse an invalid one with every
//! problem located in the submitted TOML.

use crate::support::{Body, COFFEE, clubs, purchase};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_put_the_program() {
    for club in clubs().await {
        let api = &club.api;
        let current = api.get("/v1/program", &club.read).await;
        let current = current.assert_status(200).clone();
        assert_eq!(current["source"], COFFEE.as_str());
        let version = current["version"].as_i64().unwrap();

        let same = api.put_program(&club.admin, &COFFEE).await;
        let same = same.assert_status(200);
        assert_eq!(same["changed"], false, "[{}]", club.label());
        assert_eq!(same["version"], version);

        let richer = COFFEE.replace("points_per_unit = \"2\"", "points_per_unit = \"3\"");
        let applied = api
            .send(
                "PUT",
                "/v1/program",
                Some(&club.admin),
                None,
                Body::Raw {
                    content_type: Some("text/plain; charset=utf-8"),
                    bytes: richer.clone().into_bytes(),
                },
            )
            .await;
        let applied = applied.assert_status(200);
        assert_eq!(applied["changed"], true);
        assert_eq!(applied["version"], version + 1);
        let now = api.get("/v1/program", &club.admin).await;
        assert_eq!(now.assert_status(200)["source"], richer.as_str());
        club.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_program_is_refused_with_located_errors() {
    for club in clubs().await {
        let api = &club.api;
        // Line 17 sets an impossible earning rate.
        let broken = COFFEE.replace("points_per_unit = \"2\"", "points_per_unit = \"-2\"");
        let line = broken
            .lines()
            .position(|l| l.contains("points_per_unit"))
            .unwrap()
            + 1;
        let refused = api.put_program(&club.admin, &broken).await;
        refused.assert_problem(422, "invalid_program");
        let errors = refused.body["errors"].as_array().unwrap();
        assert!(!errors.is_empty());
        let error = &errors[0];
        assert_eq!(error["line"], line, "{}", refused.text);
        assert!(error["column"].as_u64().unwrap() >= 1);
        assert_eq!(error["field"], "earning.points_per_unit");
        assert!(error["message"].as_str().is_some());

        let syntax = api.put_program(&club.admin, "[club\nname = 1\n").await;
        syntax.assert_problem(422, "invalid_program");
        assert_eq!(syntax.body["errors"][0]["line"], 1);

        // Nothing was applied.
        let current = api.get("/v1/program", &club.admin).await;
        assert_eq!(current.assert_status(200)["source"], COFFEE.as_str());

        let json = api
            .send(
                "PUT",
                "/v1/program",
                Some(&club.admin),
                None,
                Body::Raw {
                    content_type: Some("application/json"),
                    bytes: b"{}".to_vec(),
                },
            )
            .await;
        json.assert_problem(415, "unsupported_media_type");
        club.stop().await;
    }
}

/// A club with purchases cannot switch USD for IRR (minor unit 2 to 0): its past amounts would
/// be reread in the new unit. The refusal is the validation shape, located at the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_currency_change_after_purchases_is_refused_at_the_key() {
    for club in clubs().await {
        let api = &club.api;
        let member = club.enroll("history-1").await;
        api.post(
            "/v1/purchases",
            &club.pos,
            purchase("hist-doc-1", Some(&member), 1250),
        )
        .await
        .assert_status(201);
        let irr = COFFEE.replace(
            "currency = \"USD\"",
            "currency = { code = \"IRR\", minor_unit = 0 }",
        );
        assert_ne!(
            irr, *COFFEE,
            "the example's currency line moved: update the test"
        );
        let line = irr.lines().position(|l| l.contains("currency =")).unwrap() + 1;
        let refused = api.put_program(&club.admin, &irr).await;
        refused.assert_problem(422, "invalid_program");
        let error = &refused.body["errors"][0];
        assert_eq!(
            error["field"],
            "club.currency",
            "[{}] {}",
            club.label(),
            refused.text
        );
        assert_eq!(error["line"], line);
        assert!(error["message"].as_str().unwrap().contains("history"));
        let current = api.get("/v1/program", &club.admin).await;
        assert_eq!(
            current.assert_status(200)["source"],
            COFFEE.as_str(),
            "nothing applied"
        );
        club.stop().await;
    }
}
