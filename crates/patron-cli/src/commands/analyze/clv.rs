//! `patron analyze clv`: the BG/NBD and Gamma-Gamma fits and each customer's predicted
//! purchases and spend, from transactions or a summary file.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use patron_analytics::bgnbd::{self, BgNbdData, BgNbdFit, FitOptions};
use patron_analytics::date::Day;
use patron_analytics::gamma_gamma::{self, GammaGammaData, GammaGammaFit};
use patron_analytics::member::MemberId;
use patron_analytics::summary::{self, CustomerSummary};

use super::read::{
    IdRef, LineError, Problem, Span, column, csv_fields, csv_header, field, first_line, member_id,
    progress_bar, read_transactions, report_errors, scan, threads,
};
use super::{ClvArgs, ClvFormat, DAYS_PER_PERIOD, TransactionFormat, write_file, write_member};
use crate::store::thousands;

/// One customer for the models.
struct Customer {
    id: MemberId,
    summary: CustomerSummary,
    /// Average repeat spend in major units, when known.
    spend: Option<f64>,
}

/// Where a summary file keeps its columns.
#[derive(Debug, Clone, Copy)]
struct SummaryLayout {
    member: usize,
    x: usize,
    t_x: usize,
    t_cal: usize,
    monetary: Option<usize>,
}

fn summary_layout(path: &Path) -> Result<SummaryLayout, LineError> {
    let refuse = |column: usize, message: String| LineError {
        line: 1,
        column,
        message,
    };
    let first = first_line(path).map_err(|e| refuse(1, format!("{e:#}")))?;
    // Case matters for T vs t: compare lowercase names, where "t" is T.
    let header = csv_header(&first).map_err(|(c, m)| refuse(c, m))?;
    let find = |names: &[&str]| {
        column(&header, names).ok_or_else(|| {
            refuse(1, format!(
                "the header line has no {} column (found: {}); a summary file names member_id,x,t_x,T[,monetary]",
                names[0],
                header.join(",")
            ))
        })
    };
    Ok(SummaryLayout {
        member: find(&["member_id", "id", "customer_id"])?,
        x: find(&["x", "frequency"])?,
        t_x: find(&["t_x", "recency"])?,
        t_cal: find(&["t", "age"])?,
        monetary: column(&header, &["monetary", "monetary_value", "zbar"]),
    })
}

fn number(field: &[u8], column: usize, what: &str) -> Result<f64, Problem> {
    std::str::from_utf8(field)
        .ok()
        .and_then(|t| t.parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .ok_or_else(|| {
            (
                column,
                format!(
                    "{what} must be a number, found {:?}",
                    String::from_utf8_lossy(field)
                ),
            )
        })
}

fn parse_summary_line(
    line: &[u8],
    layout: SummaryLayout,
    spans: &mut Vec<Span>,
    out: &mut Vec<Customer>,
) -> Result<(), Problem> {
    let last = [
        layout.member,
        layout.x,
        layout.t_x,
        layout.t_cal,
        layout.monetary.unwrap_or(0),
    ]
    .into_iter()
    .max()
    .unwrap_or(0);
    csv_fields(line, last, spans)?;
    let get = |index: usize| (field(line, spans[index]), spans[index].column);
    let (id_field, id_column) = get(layout.member);
    let id = match member_id(&id_field, id_column)? {
        IdRef::Number(n) => MemberId::Number(n),
        IdRef::Text(t) => MemberId::Text(t.into()),
    };
    let (x_field, x_column) = get(layout.x);
    let x = number(&x_field, x_column, "x")?;
    if !(x >= 0.0 && x.fract() == 0.0 && x <= f64::from(u32::MAX)) {
        return Err((
            x_column,
            format!("x must be a whole number of repeat purchases, found {x}"),
        ));
    }
    let (t_x_field, t_x_column) = get(layout.t_x);
    let t_x = number(&t_x_field, t_x_column, "t_x")?;
    let (t_field, t_column) = get(layout.t_cal);
    let t_cal = number(&t_field, t_column, "T")?;
    if t_cal <= 0.0 {
        return Err((t_column, format!("T must be more than 0, found {t_cal}")));
    }
    if !(0.0..=t_cal).contains(&t_x) {
        return Err((
            t_x_column,
            format!("t_x must be within 0..=T ({t_cal}), found {t_x}"),
        ));
    }
    let spend = match layout.monetary {
        Some(index) => {
            let (text, column) = get(index);
            Some(number(&text, column, "monetary")?)
        }
        None => None,
    };
    out.push(Customer {
        id,
        summary: CustomerSummary {
            x: x as u32,
            t_x: if x == 0.0 { 0.0 } else { t_x },
            t_cal,
            repeat_amount_minor: 0,
        },
        spend,
    });
    Ok(())
}

fn read_summary_file(path: &Path) -> anyhow::Result<Option<Vec<Customer>>> {
    let layout = match summary_layout(path) {
        Ok(layout) => layout,
        Err(e) => {
            eprintln!(
                "{}:{}:{}: error: {}",
                path.display(),
                e.line,
                e.column,
                e.message
            );
            eprintln!("{}: refused; nothing was written", path.display());
            return Ok(None);
        }
    };
    let bar = progress_bar(path, "reading");
    let scan = scan(
        path,
        true,
        &bar,
        Vec::new,
        |out: &mut Vec<Customer>, line, spans| parse_summary_line(line, layout, spans, out),
    );
    bar.finish_and_clear();
    let scan = scan?;
    if report_errors(path, &scan) {
        return Ok(None);
    }
    let mut customers: Vec<Customer> = scan.states.into_iter().flatten().collect();
    customers.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(pair) = customers.windows(2).find(|w| w[0].id == w[1].id) {
        eprintln!(
            "{}: error: member {} appears more than once; a summary file has one line per customer",
            path.display(),
            pair[0].id
        );
        eprintln!("{}: refused; nothing was written", path.display());
        return Ok(None);
    }
    Ok(Some(customers))
}

fn read_clv_transactions(
    args: &ClvArgs,
    calibration_end: Day,
) -> anyhow::Result<Option<(Vec<Customer>, u64)>> {
    let format = match args.format {
        ClvFormat::Cdnow => TransactionFormat::Cdnow,
        _ => TransactionFormat::Csv,
    };
    let Some((members, later)) = read_transactions(
        &args.transactions,
        format,
        args.decimals,
        calibration_end,
        |days: &mut Vec<(Day, i64)>, day, amount| days.push((day, amount)),
        |mine: &mut Vec<(Day, i64)>, mut theirs| mine.append(&mut theirs),
    )?
    else {
        return Ok(None);
    };
    let customers = members
        .into_sorted()
        .into_iter()
        .filter_map(|(id, mut days)| {
            let summary = summary::summarize(&mut days, calibration_end, DAYS_PER_PERIOD)?;
            let spend = summary.average_repeat_spend(args.decimals);
            Some(Customer { id, summary, spend })
        })
        .collect();
    Ok(Some((customers, later)))
}

pub(super) fn run_clv(args: ClvArgs) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let name = args.transactions.display().to_string();
    let (customers, later) = match read_customers(&args)? {
        Ok(found) => found,
        Err(code) => return Ok(code),
    };
    let read_time = started.elapsed();
    let fit_started = std::time::Instant::now();
    let Some((bg, gg)) = fit_models(&name, &customers)? else {
        return Ok(ExitCode::FAILURE);
    };
    let fit_time = fit_started.elapsed();
    if let Some(path) = &args.customers_out {
        write_customers(path, &customers, &bg, gg.as_ref(), args.predict_weeks)?;
    }
    let fits = Fits {
        bg: &bg,
        gg: gg.as_ref(),
        customers: customers.len(),
    };
    if args.json {
        print_json(&fits, &args, read_time, fit_time);
    } else {
        print_text(&fits);
    }
    eprintln!(
        "{name}: {} customers{}; read {:.2}s, fit {:.2}s, total {:.2}s",
        thousands(customers.len() as u64),
        if later > 0 {
            format!(
                " ({} lines after the calibration end ignored)",
                thousands(later)
            )
        } else {
            String::new()
        },
        read_time.as_secs_f64(),
        fit_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// The customers of the input (a summary file, or transactions summarized at the calibration
/// end) and how many lines fell after it; or the exit code when the input was refused.
fn read_customers(args: &ClvArgs) -> anyhow::Result<Result<(Vec<Customer>, u64), ExitCode>> {
    if args.format == ClvFormat::Summary {
        return Ok(match read_summary_file(&args.transactions)? {
            Some(customers) => Ok((customers, 0)),
            None => Err(ExitCode::FAILURE),
        });
    }
    let Some(calibration_end) = args.calibration_end else {
        eprintln!(
            "error: --calibration-end is required unless --format summary\n\nFor more information, try '--help'."
        );
        return Ok(Err(ExitCode::from(2)));
    };
    Ok(match read_clv_transactions(args, calibration_end)? {
        Some(found) => Ok(found),
        None => Err(ExitCode::FAILURE),
    })
}

/// Fits BG/NBD (`None` when it cannot be fitted: reported) and, when there is spend data,
/// Gamma-Gamma (absent with a warning when it cannot be fitted).
fn fit_models(
    name: &str,
    customers: &[Customer],
) -> anyhow::Result<Option<(BgNbdFit, Option<GammaGammaFit>)>> {
    let data = BgNbdData::new(
        customers
            .iter()
            .map(|c| (c.summary.x, c.summary.t_x, c.summary.t_cal, 1.0)),
    )
    .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let bg = match bgnbd::fit(&data, FitOptions { threads: threads() }) {
        Ok(fit) => fit,
        Err(error) => {
            eprintln!("{name}: error: cannot fit the BG/NBD model: {error}");
            return Ok(None);
        }
    };
    let spend_data = GammaGammaData::new(
        customers
            .iter()
            .map(|c| (c.summary.x, c.spend.unwrap_or(0.0), 1.0)),
    )
    .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let has_spend = customers.iter().any(|c| c.spend.is_some());
    let gg = if has_spend {
        match gamma_gamma::fit(&spend_data) {
            Ok(fit) => Some(fit),
            Err(error) => {
                eprintln!("{name}: warning: no Gamma-Gamma spend model: {error}");
                None
            }
        }
    } else {
        None
    };
    Ok(Some((bg, gg)))
}

/// One line per customer: the summary, the probability of being alive, the expected
/// purchases over the prediction window and the expected spend per purchase.
fn write_customers(
    path: &Path,
    customers: &[Customer],
    bg: &BgNbdFit,
    gg: Option<&GammaGammaFit>,
    predict_weeks: f64,
) -> anyhow::Result<()> {
    let gg_params = gg.map(|f| f.params);
    write_file(path, |out| {
        out.write_all(b"member_id,x,t_x,T,p_alive,expected_purchases,expected_spend\n")?;
        let mut line = String::with_capacity(128);
        for c in customers {
            let CustomerSummary { x, t_x, t_cal, .. } = c.summary;
            let p_alive = bg.params.p_alive(x, t_x, t_cal);
            let expected = bg.params.expected_purchases(predict_weeks, x, t_x, t_cal);
            let spend = gg_params.and_then(|gg| match c.spend {
                Some(s) if s > 0.0 && c.summary.x > 0 => gg.expected_spend(c.summary.x, s),
                _ => gg.population_mean_spend(),
            });
            write_member(out, &c.id)?;
            line.clear();
            use std::fmt::Write as _;
            let _ = write!(line, ",{},{:.4},{:.4},{:.6},", x, t_x, t_cal, p_alive);
            if let Some(e) = expected {
                let _ = write!(line, "{e:.6}");
            }
            line.push(',');
            if let Some(s) = spend {
                let _ = write!(line, "{s:.4}");
            }
            line.push('\n');
            out.write_all(line.as_bytes())?;
        }
        Ok(())
    })
}

/// The fitted models, for the report.
struct Fits<'a> {
    bg: &'a BgNbdFit,
    gg: Option<&'a GammaGammaFit>,
    customers: usize,
}

fn print_json(
    fits: &Fits<'_>,
    args: &ClvArgs,
    read_time: std::time::Duration,
    fit_time: std::time::Duration,
) {
    let Fits { bg, gg, customers } = fits;
    let se = bg.standard_errors;
    let gg_se = gg.and_then(|f| f.standard_errors);
    let report = serde_json::json!({
        "bgnbd": {
            "r": bg.params.r,
            "alpha": bg.params.alpha,
            "a": bg.params.a,
            "b": bg.params.b,
            "log_likelihood": bg.log_likelihood,
        },
        "gamma_gamma": gg.map(|f| serde_json::json!({
            "p": f.params.p,
            "q": f.params.q,
            "v": f.params.v,
            "log_likelihood": f.log_likelihood,
            "customers": f.customers,
        })),
        "standard_errors": {
            "bgnbd": se.map(|s| serde_json::json!({"r": s.r, "alpha": s.alpha, "a": s.a, "b": s.b})),
            "gamma_gamma": gg_se.map(|s| serde_json::json!({"p": s.p, "q": s.q, "v": s.v})),
        },
        "customers": customers,
        "distinct_tuples": bg.distinct_tuples,
        "time_unit": "weeks",
        "calibration_end": args.calibration_end.map(|d| d.to_string()),
        "predict_weeks": args.predict_weeks,
        "seconds": {
            "read": read_time.as_secs_f64(),
            "fit": fit_time.as_secs_f64(),
        },
    });
    println!("{report}");
}

fn print_text(fits: &Fits<'_>) {
    let Fits { bg, gg, customers } = fits;
    let se = bg.standard_errors;
    let gg_se = gg.and_then(|f| f.standard_errors);
    let show = |value: f64, error: Option<f64>| match error {
        Some(e) => format!("{value:>12.6}  (± {e:.6})"),
        None => format!("{value:>12.6}"),
    };
    println!(
        "BG/NBD (time unit: weeks), {} customers, {} distinct (x, t_x, T)",
        thousands(*customers as u64),
        thousands(bg.distinct_tuples as u64)
    );
    println!("  r      {}", show(bg.params.r, se.map(|s| s.r)));
    println!("  alpha  {}", show(bg.params.alpha, se.map(|s| s.alpha)));
    println!("  a      {}", show(bg.params.a, se.map(|s| s.a)));
    println!("  b      {}", show(bg.params.b, se.map(|s| s.b)));
    println!("  log-likelihood {:.4}", bg.log_likelihood);
    match gg {
        Some(f) => {
            println!(
                "Gamma-Gamma, {} repeat customers",
                thousands(f.customers as u64)
            );
            println!("  p      {}", show(f.params.p, gg_se.map(|s| s.p)));
            println!("  q      {}", show(f.params.q, gg_se.map(|s| s.q)));
            println!("  v      {}", show(f.params.v, gg_se.map(|s| s.v)));
            println!("  log-likelihood {:.4}", f.log_likelihood);
        }
        None => println!("Gamma-Gamma: not fitted (no spend data)"),
    }
}
