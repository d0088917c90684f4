//! `patron analyze rfm`: recency, frequency and monetary scores and segments per member.

use std::io::Write;
use std::process::ExitCode;

use patron_analytics::amount::format_minor;
use patron_analytics::rfm::{self, RfmTotals, SegmentMap};

use super::read::read_transactions;
use super::{RfmArgs, write_field, write_file, write_member};
use crate::store::thousands;

pub(super) fn run_rfm(args: RfmArgs) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let Some((members, later)) = read_transactions(
        &args.transactions,
        args.format,
        args.decimals,
        args.as_of,
        |totals: &mut RfmTotals, day, amount| totals.add(day, amount),
        |mine: &mut RfmTotals, theirs| mine.merge(theirs),
    )?
    else {
        return Ok(ExitCode::FAILURE);
    };
    let read_time = started.elapsed();
    let members = members.into_sorted();
    let totals: Vec<RfmTotals> = members.iter().map(|(_, t)| *t).collect();
    let scores = rfm::score(&totals, args.as_of);
    let segments = SegmentMap::default();
    let names = segments.names();
    let mut per_segment = vec![0u64; names.len()];
    let mut line = String::with_capacity(128);
    write_file(&args.out, |out| {
        out.write_all(b"member_id,recency_days,frequency,monetary,r,f,m,segment\n")?;
        for ((id, _), s) in members.iter().zip(&scores) {
            let segment = segments.segment(s.r, s.f);
            if let Some(i) = names.iter().position(|n| *n == segment) {
                per_segment[i] += 1;
            }
            write_member(out, id)?;
            line.clear();
            use std::fmt::Write as _;
            let _ = write!(
                line,
                ",{},{},{},{},{},{},",
                s.recency_days,
                s.frequency,
                format_minor(s.monetary_minor, args.decimals),
                s.r,
                s.f,
                s.m
            );
            out.write_all(line.as_bytes())?;
            write_field(out, segment)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    })?;
    println!("segment,members");
    for (name, count) in names.iter().zip(&per_segment) {
        let mut text = Vec::new();
        let _ = write_field(&mut text, name);
        println!("{},{count}", String::from_utf8_lossy(&text));
    }
    eprintln!(
        "{}: {} members scored as of {} ({} lines after it ignored); wrote {} in {:.2}s (reading {:.2}s)",
        args.transactions.display(),
        thousands(members.len() as u64),
        args.as_of,
        thousands(later),
        args.out.display(),
        started.elapsed().as_secs_f64(),
        read_time.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
