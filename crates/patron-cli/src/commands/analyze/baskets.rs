//! `patron analyze baskets`: the categories (and SKUs) bought together, and the category
//! members buy next.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use patron_analytics::basket::{self, BasketLog, Baskets, Level, Next};
use patron_analytics::member::canonical_number;

use super::read::{
    IdRef, LineError, Problem, Span, column, csv_fields, csv_header, day, field, first_line,
    member_id, progress_bar, report_errors, scan,
};
use super::{BasketLevel, BasketsArgs, Output, write_field, write_file};
use crate::store::thousands;

/// Where a purchase-lines file keeps its columns.
#[derive(Debug, Clone, Copy)]
struct BasketLayout {
    member: usize,
    date: usize,
    document: usize,
    category: usize,
    sku: Option<usize>,
}

impl BasketLayout {
    fn last(&self) -> usize {
        [self.member, self.date, self.document, self.category]
            .into_iter()
            .chain(self.sku)
            .max()
            .unwrap_or(0)
    }
}

/// The columns of a purchase-lines file and the levels to pair.
fn basket_layout(
    path: &Path,
    level: Option<BasketLevel>,
) -> Result<(BasketLayout, BasketLevel), LineError> {
    let refuse = |column: usize, message: String| LineError {
        line: 1,
        column,
        message,
    };
    let first = first_line(path).map_err(|e| refuse(1, format!("{e:#}")))?;
    let header = csv_header(&first).map_err(|(c, m)| refuse(c, m))?;
    let find = |names: &[&str]| {
        column(&header, names).ok_or_else(|| {
            refuse(1, format!(
                "the header line has no {} column (found: {}); the first line must name the columns: member_id,date,document_id,category[,sku]",
                names[0],
                header.join(",")
            ))
        })
    };
    let layout = BasketLayout {
        member: find(&["member_id", "member", "customer_id"])?,
        date: find(&["date"])?,
        document: find(&["document_id", "document", "receipt_id", "order_id"])?,
        category: find(&["category"])?,
        sku: column(&header, &["sku", "product_id"]),
    };
    let level = match (level, layout.sku) {
        (Some(level), _) if level == BasketLevel::Category => level,
        (Some(level), Some(_)) => level,
        (Some(level), None) => {
            let name = if level == BasketLevel::Sku {
                "sku"
            } else {
                "both"
            };
            return Err(refuse(
                1,
                format!(
                    "--level {name} needs a sku column, and the header has none (found: {})",
                    header.join(",")
                ),
            ));
        }
        (None, Some(_)) => BasketLevel::Both,
        (None, None) => BasketLevel::Category,
    };
    Ok((layout, level))
}

/// A required text field of a purchase line: not empty, UTF-8.
fn text_field<'a>(bytes: &'a [u8], column: usize, what: &str) -> Result<&'a str, Problem> {
    if bytes.is_empty() {
        return Err((column, format!("empty {what}")));
    }
    std::str::from_utf8(bytes).map_err(|_| (column, format!("the {what} is not UTF-8 text")))
}

fn parse_basket_line(
    line: &[u8],
    layout: BasketLayout,
    spans: &mut Vec<Span>,
    log: &mut BasketLog,
) -> Result<(), Problem> {
    csv_fields(line, layout.last(), spans)?;
    let get = |index: usize| (field(line, spans[index]), spans[index].column);
    let (member_bytes, member_column) = get(layout.member);
    let member = match member_id(&member_bytes, member_column)? {
        IdRef::Number(n) => basket::Id::Number(n),
        IdRef::Text(t) => basket::Id::Text(t),
    };
    let (date_bytes, date_column) = get(layout.date);
    let day = day(&date_bytes, date_column)?;
    let (document_bytes, document_column) = get(layout.document);
    if document_bytes.is_empty() {
        return Err((
            document_column,
            "empty document_id: a basket is the lines of one (member_id, document_id)".into(),
        ));
    }
    let document = match canonical_number(&document_bytes) {
        Some(n) => basket::Id::Number(n),
        None => basket::Id::Text(text_field(&document_bytes, document_column, "document_id")?),
    };
    let (category_bytes, category_column) = get(layout.category);
    let category = text_field(&category_bytes, category_column, "category")?;
    let sku_field = layout.sku.map(get);
    let sku = match &sku_field {
        Some((bytes, _)) if bytes.is_empty() => None,
        Some((bytes, column)) => Some(text_field(bytes, *column, "sku")?),
        None => None,
    };
    log.add_line(member, document, day, category, sku);
    Ok(())
}

pub(super) fn run_baskets(args: BasketsArgs) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let name = args.transactions.display().to_string();
    let (baskets, lines, level) = match read_baskets(&args) {
        Ok(Ok(found)) => found,
        Ok(Err(code)) => return Ok(code),
        Err(error) => return Err(error),
    };
    let read_time = started.elapsed();

    let top = args.top.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let levels: &[Level] = match level {
        BasketLevel::Category => &[Level::Category],
        BasketLevel::Sku => &[Level::Sku],
        BasketLevel::Both => &[Level::Category, Level::Sku],
    };
    let reports: Vec<(Level, basket::PairReport<'_>)> = levels
        .iter()
        .map(|&level| (level, baskets.frequent_pairs(level, args.min_support, top)))
        .collect();
    let next = args.next_out.as_ref().map(|_| baskets.next_categories(top));
    write_outputs(&args, &reports, next.as_deref())?;

    println!("level,items,frequent_items,pairs");
    for (level, report) in &reports {
        println!(
            "{},{},{},{}",
            level.as_str(),
            report.items,
            report.frequent_items,
            report.frequent_pairs
        );
    }
    eprintln!(
        "{name}: {} lines, {} baskets of {} members; pairs in at least {} baskets (support >= {}); wrote {}{} in {:.2}s (reading {:.2}s)",
        thousands(lines as u64),
        thousands(baskets.len() as u64),
        thousands(baskets.members() as u64),
        thousands(reports.first().map_or(1, |(_, r)| r.min_baskets)),
        args.min_support,
        args.out.display(),
        args.next_out
            .as_ref()
            .map(|p| format!(" and {}", p.display()))
            .unwrap_or_default(),
        started.elapsed().as_secs_f64(),
        read_time.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads the transactions into baskets on every core: (baskets, lines read, the level the
/// file allows), or the exit code when the file was refused (reported).
fn read_baskets(
    args: &BasketsArgs,
) -> anyhow::Result<Result<(Baskets, usize, BasketLevel), ExitCode>> {
    let path = &args.transactions;
    let name = path.display().to_string();
    let (layout, level) = match basket_layout(path, args.level) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("{name}:{}:{}: error: {}", e.line, e.column, e.message);
            eprintln!("{name}: refused; nothing was written");
            return Ok(Err(ExitCode::FAILURE));
        }
    };
    let bar = progress_bar(path, "reading");
    let scan = scan(path, true, &bar, BasketLog::new, |log, line, spans| {
        parse_basket_line(line, layout, spans, log)
    });
    bar.finish_and_clear();
    let scan = scan?;
    if report_errors(path, &scan) {
        return Ok(Err(ExitCode::FAILURE));
    }
    let mut logs = scan.states.into_iter();
    let mut log = logs.next().unwrap_or_default();
    for other in logs {
        log.merge(other);
    }
    let lines = log.lines();
    Ok(Ok((log.finish(), lines, level)))
}

/// Writes the pairs file and, when asked, the next-category file; both are written before
/// either is published, so a failure leaves neither behind.
fn write_outputs(
    args: &BasketsArgs,
    reports: &[(Level, basket::PairReport<'_>)],
    next: Option<&[Next<'_>]>,
) -> anyhow::Result<()> {
    let mut pairs_out = Output::create(&args.out)?;
    if let Err(error) = write_pairs(&mut pairs_out.writer, reports) {
        pairs_out.abandon();
        return Err(error).with_context(|| format!("cannot write {}", args.out.display()));
    }
    if let (Some(target), Some(next)) = (&args.next_out, next) {
        let result = write_file(target, |out| write_next(out, next));
        if let Err(error) = result {
            pairs_out.abandon();
            return Err(error);
        }
    }
    pairs_out.commit()
}

fn write_pairs(
    out: &mut impl Write,
    reports: &[(Level, basket::PairReport<'_>)],
) -> std::io::Result<()> {
    out.write_all(
        b"level,a,b,baskets_with_both,support,confidence_a_to_b,confidence_b_to_a,lift\n",
    )?;
    let mut line = String::with_capacity(256);
    for (level, report) in reports {
        for pair in &report.pairs {
            out.write_all(level.as_str().as_bytes())?;
            out.write_all(b",")?;
            write_field(out, pair.a)?;
            out.write_all(b",")?;
            write_field(out, pair.b)?;
            line.clear();
            use std::fmt::Write as _;
            let _ = writeln!(
                line,
                ",{},{:.6},{:.6},{:.6},{:.6}",
                pair.both,
                pair.support(),
                pair.confidence_a_to_b(),
                pair.confidence_b_to_a(),
                pair.lift()
            );
            out.write_all(line.as_bytes())?;
        }
    }
    Ok(())
}

fn write_next(out: &mut impl Write, next: &[Next<'_>]) -> std::io::Result<()> {
    out.write_all(b"category,next_category,count,share\n")?;
    let mut line = String::with_capacity(256);
    for n in next {
        write_field(out, n.category)?;
        out.write_all(b",")?;
        write_field(out, n.next)?;
        line.clear();
        use std::fmt::Write as _;
        let _ = writeln!(line, ",{},{:.6}", n.count, n.share());
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}
