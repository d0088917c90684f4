//! Scheduled jobs on both backends with a controlled clock: each kind does its work once,
//! a job whose lease expired is handed over, birthdays are granted once per year.

use jiff::SignedDuration;
use patron_engine::jobs::{JobKind, Worker};
use patron_store::jobs::ClaimScope;

use crate::support::{clubs, program};

#[tokio::test]
async fn activation_job_posts_once_even_when_run_twice() {
    for club in clubs(&program(1, "policy = \"never\"", "only_pending", "forfeit")).await {
        let member = club.enroll("m1").await;
        club.buy("doc-1", &member, "1", 1000).await;
        assert_eq!(club.balance(&member).await.pending, 10);
        club.clock.advance(SignedDuration::from_hours(49));
        let worker = Worker::new(SignedDuration::from_secs(60));
        let first = club
            .engine
            .run_job_now(&club.tenant, JobKind::Activation, &worker)
            .await
            .unwrap();
        assert_eq!(first.outcome.as_deref(), Ok("1 pending purchases posted"));
        let second = club
            .engine
            .run_job_now(&club.tenant, JobKind::Activation, &worker)
            .await
            .unwrap();
        assert_eq!(second.outcome.as_deref(), Ok("0 pending purchases posted"));
        assert_eq!(club.balance(&member).await.available, 10);
        // The scheduled occurrence of every kind exists once, however often it is ensured.
        assert_eq!(
            club.engine.ensure_jobs(&club.tenant).await.unwrap(),
            JobKind::ALL.len() as u64
        );
        assert_eq!(club.engine.ensure_jobs(&club.tenant).await.unwrap(), 0);
        let reports = club.engine.work_until_idle(&worker, 100).await.unwrap();
        assert_eq!(reports.len(), JobKind::ALL.len(), "{reports:?}");
        assert!(reports.iter().all(|r| r.outcome.is_ok() && r.recorded));
        assert!(club.engine.work_once(&worker).await.unwrap().is_none());
        club.verify().await;
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn an_expired_lease_hands_the_job_over() {
    for club in clubs(&program(1, "policy = \"never\"", "only_pending", "forfeit")).await {
        club.engine.ensure_jobs(&club.tenant).await.unwrap();
        let store = club.engine.store();
        let lease = SignedDuration::from_secs(30);
        let dead = store
            .claim_job(ClaimScope::AnyDue, "dead:1:x", club.engine.now(), lease)
            .await
            .unwrap()
            .unwrap();
        // Held: nobody else gets it.
        let other = store
            .claim_job(
                ClaimScope::Key(club.tenant.id, &dead.key),
                "live:2:y",
                club.engine.now(),
                lease,
            )
            .await
            .unwrap();
        assert!(other.is_none());
        club.clock.advance(SignedDuration::from_secs(31));
        let taken = store
            .claim_job(
                ClaimScope::Key(club.tenant.id, &dead.key),
                "live:2:y",
                club.engine.now(),
                lease,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(taken.attempts, 2);
        // The dead worker cannot finish what it lost; the new holder can.
        assert!(
            !store
                .finish_job(dead.id, "dead:1:x", club.engine.now(), "late")
                .await
                .unwrap()
        );
        assert!(
            store
                .finish_job(taken.id, "live:2:y", club.engine.now(), "ok")
                .await
                .unwrap()
        );
        let job = store.job(club.tenant.id, &dead.key).await.unwrap().unwrap();
        assert_eq!(
            (job.state.as_str(), job.result.as_deref()),
            ("done", Some("ok"))
        );
        club.db.cleanup().await;
    }
}

#[tokio::test]
async fn birthday_is_granted_once_per_year() {
    let source = format!(
        "{}\n[[rules]]\nid = \"bday\"\nname = \"Happy birthday\"\nkind = \"birthday\"\namount = \"50\"\n",
        program(0, "policy = \"never\"", "only_pending", "forfeit")
    );
    for club in clubs(&source).await {
        let request = patron_engine::EnrollRequest {
            profile: patron_engine::ProfileFields {
                external_id: Some("b1".into()),
                birthday: Some(
                    club.engine
                        .now()
                        .to_zoned(jiff::tz::TimeZone::get(crate::support::ZONE).unwrap())
                        .date()
                        .strftime("1990-%m-%d")
                        .to_string(),
                ),
                ..patron_engine::ProfileFields::default()
            },
            channel: "pos".into(),
            card_number: None,
            consents: vec![],
        };
        let member = club
            .engine
            .enroll(&club.tenant, &request, None)
            .await
            .unwrap()
            .value
            .id;
        let worker = Worker::new(SignedDuration::from_secs(60));
        for _ in 0..2 {
            let report = club
                .engine
                .run_job_now(&club.tenant, JobKind::Birthdays, &worker)
                .await
                .unwrap();
            assert!(report.outcome.is_ok(), "{report:?}");
        }
        assert_eq!(club.balance(&member).await.available, 50);
        club.verify().await;
        club.db.cleanup().await;
    }
}

/// A club whose `[club] calendar` is Persian counts its months and birthdays in the Persian
/// calendar. The clock starts on 2 March 2026, which is 11 Esfand 1404.
#[tokio::test]
async fn a_persian_club_counts_persian_months_and_birthdays() {
    let source = format!(
        "{}\n[[rules]]\nid = \"bday\"\nname = \"Happy birthday\"\nkind = \"birthday\"\namount = \"50\"\n",
        program(
            0,
            "policy = \"after_earning\"\namount = 1\nunit = \"months\"\nround_to = \"end_of_month\"",
            "only_pending",
            "forfeit"
        )
    )
    .replace(
        &format!("time_zone = \"{}\"\n", crate::support::ZONE),
        &format!(
            "time_zone = \"{}\"\ncalendar = \"persian\"\n",
            crate::support::ZONE
        ),
    );
    for club in clubs(&source).await {
        let enroll = |external_id: &str, birthday: &str| patron_engine::EnrollRequest {
            profile: patron_engine::ProfileFields {
                external_id: Some(external_id.into()),
                birthday: Some(birthday.into()),
                ..patron_engine::ProfileFields::default()
            },
            channel: "pos".into(),
            card_number: None,
            consents: vec![],
        };
        // 1 March 1992 was 11 Esfand 1370: a Persian birthday today. 2 March 1992 was
        // 12 Esfand 1370: a Gregorian birthday today, but not a Persian one.
        let mut ids = Vec::new();
        for (external_id, birthday) in [("persian", "1992-03-01"), ("gregorian", "1992-03-02")] {
            let request = enroll(external_id, birthday);
            let enrolled = club.engine.enroll(&club.tenant, &request, None).await;
            ids.push(enrolled.unwrap().value.id);
        }
        let worker = Worker::new(SignedDuration::from_secs(60));
        for expected in [
            "1 of 1 members granted, 50 points",
            "0 of 1 members granted, 0 points",
        ] {
            let report = club
                .engine
                .run_job_now(&club.tenant, JobKind::Birthdays, &worker)
                .await
                .unwrap();
            assert_eq!(report.outcome.as_deref(), Ok(expected));
        }
        assert_eq!(club.balance(&ids[0]).await.available, 50);
        assert_eq!(club.balance(&ids[1]).await.available, 0);

        // Points earned on 11 Esfand last one month (to 11 Farvardin 1405), rounded to the end
        // of Farvardin: they expire as 1 Ordibehesht 1405 (21 April 2026) begins, where a
        // Gregorian club's would last until 1 May.
        club.buy("doc-1", &ids[1], "1", 1000).await;
        let expiring = club.balance(&ids[1]).await.expiring;
        assert_eq!(expiring.len(), 1, "{expiring:?}");
        assert_eq!(expiring[0].at, crate::support::ny("2026-04-21T00:00"));
        assert_eq!(expiring[0].points, 10);
        club.verify().await;
        club.db.cleanup().await;
    }
}
