//! `patron analyze ...`: member analytics from files, no database. `rfm` scores members by
//! recency, frequency and monetary value and names their segments; `clv` fits the BG/NBD
//! and Gamma-Gamma models and predicts each customer's purchases and spend; `baskets` finds
//! the categories (and SKUs) bought together and the category members buy next.
//!
//! The readers are built for files of tens of millions of lines: the file is read in 8 MiB
//! blocks cut at line ends, the blocks are parsed on every core (bytes, never a `String` per
//! line) into per-thread member maps, and the maps are merged at the end. A bad line is
//! reported as `FILE:LINE:COLUMN: error: MESSAGE`; any bad line refuses the whole file and
//! nothing is written. The arithmetic lives in `patron-analytics` (docs/ANALYTICS.md).

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::mpsc::sync_channel;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use patron_analytics::amount::{format_minor, parse_minor};
use patron_analytics::basket::{self, BasketLog, Level};
use patron_analytics::bgnbd::{self, BgNbdData, FitOptions};
use patron_analytics::date::Day;
use patron_analytics::gamma_gamma::{self, GammaGammaData};
use patron_analytics::member::{MemberId, MemberMap, canonical_number};
use patron_analytics::rfm::{self, RfmTotals, SegmentMap};
use patron_analytics::summary::{self, CustomerSummary};

use crate::diagnostics;
use crate::store::thousands;

/// Bytes per block handed to a parsing thread.
const CHUNK_BYTES: usize = 8 << 20;
/// Bad lines printed before the rest are only counted.
const ERRORS_SHOWN_MAX: usize = 20;
/// Files at least this large get a progress bar (when stderr is a terminal).
const PROGRESS_FROM_BYTES: u64 = 16 << 20;
/// Parsing threads at most.
const THREADS_MAX: usize = 16;
/// Days per time period of the CLV models: weeks.
const DAYS_PER_PERIOD: f64 = 7.0;

const FORMATS_HELP: &str = "\
Input formats (--format):
  csv     A header line naming the columns, in any order: member_id, date, amount (others
          are ignored). Dates YYYY-MM-DD or YYYYMMDD; amounts decimal (12.50, -3), exact in
          minor units (--decimals). Quoted fields allowed, one record per line.
  cdnow   Whitespace-separated, as the CDNOW data sets: 4 columns (customer_id date
          number_of_cds dollar_value, with or without that header line) or the 5-column
          sample (full id, sample id, date, CDs, dollars; the sample id is the member).
LF or CRLF line ends. Each bad line is reported as FILE:LINE:COLUMN: error: MESSAGE, and
one bad line refuses the whole file: nothing is written, exit code 1.";

const RFM_HELP: &str = "\
Each purchase line counts once (frequency); lines dated after --as-of are ignored.
recency_days = as-of date - last purchase; monetary = total amount. Scores 1-5 as SQL's
NTILE(5) (5 = most recent / most frequent / highest value; ties broken by member id:
whole-number ids by value, first, then other ids by their bytes). The segment is named
from the R x F grid in docs/ANALYTICS.md.

Output (--out): member_id,recency_days,frequency,monetary,r,f,m,segment, in member-id
order, monetary with --decimals decimals. Stdout: members per segment.

Examples:
  patron analyze rfm --transactions purchases.csv --as-of 2025-12-31 --out rfm.csv
  patron analyze rfm --format cdnow --transactions CDNOW_sample.txt --as-of 1998-06-30 --out rfm.csv";

const CLV_HELP: &str = "\
Time is in weeks. Purchases on one day are one purchase. Over the calibration period
(up to and including --calibration-end): x = purchase days after the first, t_x = weeks
from the first to the last, T = weeks from the first to the end of calibration; spend =
the average amount of the repeat purchase days. BG/NBD is fitted on every customer,
Gamma-Gamma on those with x > 0 and a positive average spend.

--format summary reads one customer per line instead of purchases, for models fitted
elsewhere or synthetic data: a CSV header naming member_id (or id), x (or frequency),
t_x (or recency), T, and optionally monetary (or monetary_value, zbar: the average repeat
spend, a decimal in major units). --calibration-end is not needed then.

--customers-out writes member_id,x,t_x,T,p_alive,expected_purchases,expected_spend:
P(alive), expected purchases in the next --predict-weeks, expected spend per purchase
(Gamma-Gamma; the population mean for customers without repeat purchases). CLV =
expected_purchases x expected_spend (docs/ANALYTICS.md).

Examples:
  patron analyze clv --format cdnow --transactions CDNOW_sample.txt --calibration-end 1997-09-30 --predict-weeks 39 --json
  patron analyze clv --transactions purchases.csv --calibration-end 2025-06-30 --customers-out clv.csv
  patron analyze clv --format summary --transactions customers.csv --json";

const BASKETS_HELP: &str = "\
Input: CSV with a header naming at least member_id, date, document_id and category, and
optionally sku (other columns are ignored), one line per purchase line, in any order.
A basket is one purchase: the lines with the same (member_id, document_id); its day is
the earliest date of its lines. Categories and SKUs are sets per basket: an item on
several lines of one basket counts once. A line without a document_id, category, member
or valid date refuses the file (FILE:LINE:COLUMN: error: ...; nothing is written, exit
code 1). An empty sku is a line without a SKU. Header names: member_id (member,
customer_id), document_id (document, receipt_id, order_id), category, sku (product_id).

Pairs (--out): with n baskets, count(A) baskets with A and count(A,B) with both,
support = count(A,B)/n, confidence_a_to_b = count(A,B)/count(A), confidence_b_to_a =
count(A,B)/count(B), lift = count(A,B)*n/(count(A)*count(B)) (1 = independent). Pairs
with support >= --min-support; only items whose own support meets it are paired (a pair
is never more frequent than its items). Header:
  level,a,b,baskets_with_both,support,confidence_a_to_b,confidence_b_to_a,lift
level is category or sku; a < b by name; rows by level (category first), then
baskets_with_both descending, then a, then b; at most --top per level.

Next category (--next-out): each member's baskets in time order (day, then document_id:
whole numbers by value first, then text). For every basket followed by another of the
same member, each category A of it and each category B of the next basket count one
transition A -> B (B may be A: bought again). share = count / baskets with A that have a
next basket (shares of one A may add up to more than 1). Header:
  category,next_category,count,share
rows by category, then count descending, then next_category; at most --top per category.

Stdout: level,items,frequent_items,pairs (pairs found before --top). Ratios have 6
decimals.

Examples:
  patron analyze baskets --transactions lines.csv --out pairs.csv
  patron analyze baskets --transactions lines.csv --min-support 0.001 --level sku --top 100 --out sku-pairs.csv
  patron analyze baskets --transactions lines.csv --level category --out pairs.csv --next-out next.csv --top 3";

#[derive(Debug, Subcommand)]
pub enum AnalyzeCommand {
    /// Score members by recency, frequency and monetary value (RFM) and name their segments,
    /// from a file of purchases (no database)
    #[command(after_help = format!("{RFM_HELP}\n\n{FORMATS_HELP}"))]
    Rfm(RfmArgs),
    /// Fit the BG/NBD and Gamma-Gamma models of customer lifetime value and predict each
    /// customer's purchases and spend, from a file (no database)
    #[command(after_help = format!("{CLV_HELP}\n\n{FORMATS_HELP}"))]
    Clv(ClvArgs),
    /// Find the categories (and SKUs) bought together, with support, confidence and lift,
    /// and the category members buy next, from a file of purchase lines (no database)
    #[command(after_help = BASKETS_HELP)]
    Baskets(BasketsArgs),
    /// Recompute the member statistics of a tenant from its purchase history and report (and
    /// fix) every difference from the stored ones (uses the database)
    #[command(after_help = super::stats::REBUILD_STATS_HELP)]
    RebuildStats(super::stats::RebuildStatsArgs),
}

/// What `analyze baskets` pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BasketLevel {
    /// Pairs of categories
    Category,
    /// Pairs of SKUs (needs a sku column)
    Sku,
    /// Both, categories first (needs a sku column)
    Both,
}

#[derive(Debug, Args)]
pub struct BasketsArgs {
    /// The purchase lines file (CSV: member_id,date,document_id,category[,sku])
    #[arg(long, value_name = "FILE")]
    pub transactions: PathBuf,
    /// Least share of all baskets a pair must be in (more than 0, at most 1)
    #[arg(long, value_name = "S", default_value_t = 0.01, value_parser = parse_support)]
    pub min_support: f64,
    /// At most N pairs per level and N next categories per category [default: all]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub top: Option<u64>,
    /// Which pairs [default: both when the file has a sku column, else category]
    #[arg(long, value_enum)]
    pub level: Option<BasketLevel>,
    /// Where to write the pairs (CSV; replaced only when the whole input is valid)
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Where to write the next categories (CSV)
    #[arg(long, value_name = "FILE")]
    pub next_out: Option<PathBuf>,
}

/// Layouts of a file of purchases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransactionFormat {
    /// CSV with a header: member_id, date, amount
    Csv,
    /// The CDNOW whitespace-separated layouts (4 or 5 columns)
    Cdnow,
}

/// Layouts `analyze clv` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClvFormat {
    /// CSV of purchases with a header: member_id, date, amount
    Csv,
    /// The CDNOW whitespace-separated layouts (4 or 5 columns)
    Cdnow,
    /// One customer per line: member_id, x, t_x, T[, monetary]
    Summary,
}

#[derive(Debug, Args)]
pub struct RfmArgs {
    /// The purchases file
    #[arg(long, value_name = "FILE")]
    pub transactions: PathBuf,
    /// Score as of this day (YYYY-MM-DD); later purchases are ignored
    #[arg(long, value_name = "DATE", value_parser = parse_day)]
    pub as_of: Day,
    /// Where to write the scores (CSV; replaced only when the whole input is valid)
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// The file's layout
    #[arg(long, value_enum, default_value_t = TransactionFormat::Csv)]
    pub format: TransactionFormat,
    /// Decimals of the currency's minor unit: 2 for cents, 0 for rials
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub decimals: u32,
}

#[derive(Debug, Args)]
pub struct ClvArgs {
    /// The purchases file (or customers file with --format summary)
    #[arg(long, value_name = "FILE")]
    pub transactions: PathBuf,
    /// Last day of the calibration period (YYYY-MM-DD); later purchases are ignored.
    /// Required unless --format summary
    #[arg(long, value_name = "DATE", value_parser = parse_day)]
    pub calibration_end: Option<Day>,
    /// Weeks ahead to predict purchases for
    #[arg(long, value_name = "N", default_value_t = 52.0, value_parser = parse_weeks)]
    pub predict_weeks: f64,
    /// Write each customer's predictions here (CSV)
    #[arg(long, value_name = "FILE")]
    pub customers_out: Option<PathBuf>,
    /// Print the fitted models as one JSON object instead of a table
    #[arg(long)]
    pub json: bool,
    /// The file's layout
    #[arg(long, value_enum, default_value_t = ClvFormat::Csv)]
    pub format: ClvFormat,
    /// Decimals of the currency's minor unit: 2 for cents, 0 for rials
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub decimals: u32,
}

fn parse_day(text: &str) -> Result<Day, String> {
    Day::parse(text.trim().as_bytes()).map_err(|e| format!("{text:?}: {e}"))
}

fn parse_support(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if s > 0.0 && s <= 1.0 => Ok(s),
        _ => Err(format!(
            "{text:?}: expected a share of baskets, more than 0 and at most 1 (0.01 = 1%)"
        )),
    }
}

fn parse_weeks(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(weeks) if weeks.is_finite() && weeks > 0.0 && weeks <= 5200.0 => Ok(weeks),
        _ => Err(format!(
            "{text:?}: expected a number of weeks, more than 0 and at most 5200"
        )),
    }
}

pub fn run(command: AnalyzeCommand) -> anyhow::Result<ExitCode> {
    match command {
        AnalyzeCommand::Rfm(args) => run_rfm(args),
        AnalyzeCommand::Clv(args) => run_clv(args),
        AnalyzeCommand::Baskets(args) => run_baskets(args),
        AnalyzeCommand::RebuildStats(_) => {
            anyhow::bail!("rebuild-stats needs the database settings: `patron_cli::run` routes it")
        }
    }
}

// ---------------------------------------------------------------------------------------
// Reading: blocks of lines parsed on several threads.

/// A problem with one line, 1-based.
#[derive(Debug, Clone)]
struct LineError {
    line: u64,
    column: usize,
    message: String,
}

/// A problem in a line: (1-based column, message).
type Problem = (usize, String);

/// What the threads of a scan produced.
struct Scan<S> {
    states: Vec<S>,
    /// The first [`ERRORS_SHOWN_MAX`] bad lines by line number.
    errors: Vec<LineError>,
    error_count: u64,
}

/// Threads to parse with: the machine's cores, at most [`THREADS_MAX`].
fn threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, THREADS_MAX)
}

/// The first non-blank line of the file (at most 64 KiB of it), without its line end.
fn first_line(path: &Path) -> anyhow::Result<Vec<u8>> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut head = Vec::new();
    file.take(64 << 10)
        .read_to_end(&mut head)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let line = head
        .split(|&b| b == b'\n')
        .map(trim_line_end)
        .find(|l| !l.iter().all(u8::is_ascii_whitespace))
        .unwrap_or_default();
    Ok(line.to_vec())
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn progress_bar(path: &Path, label: &str) -> ProgressBar {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let visible = size >= PROGRESS_FROM_BYTES && std::io::stderr().is_terminal();
    let bar = ProgressBar::with_draw_target(
        Some(size),
        if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    if let Ok(style) = ProgressStyle::with_template(&format!(
        "{{spinner}} {label} [{{bar:40}}] {{bytes}}/{{total_bytes}} ({{bytes_per_sec}}, {{eta}} left)"
    )) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Reads `path` in blocks cut at line ends and parses every non-blank line (its line end
/// removed) with `parse(state, line, scratch)` on [`threads`] threads, each with its own
/// state from `new_state`. Line 1 is skipped when `skip_header`.
fn scan<S, N, P>(
    path: &Path,
    skip_header: bool,
    bar: &ProgressBar,
    new_state: N,
    parse: P,
) -> anyhow::Result<Scan<S>>
where
    S: Send,
    N: Fn() -> S + Sync,
    P: Fn(&mut S, &[u8], &mut Vec<Span>) -> Result<(), Problem> + Sync,
{
    let name = path.display().to_string();
    let mut file = File::open(path).with_context(|| format!("cannot read {name}"))?;
    let threads = threads();
    let (sender, receiver) = sync_channel::<(Vec<u8>, u64)>(threads * 2);
    let receiver = Mutex::new(receiver);
    let worker = || {
        let mut state = new_state();
        let mut errors: Vec<LineError> = Vec::new();
        let mut error_count = 0u64;
        let mut spans: Vec<Span> = Vec::with_capacity(16);
        loop {
            let next = match receiver.lock() {
                Ok(guard) => guard.recv(),
                Err(_) => break, // another worker panicked; the scope reports it
            };
            let Ok((block, first)) = next else { break };
            for (offset, raw) in block.split(|&b| b == b'\n').enumerate() {
                let line_number = first + offset as u64;
                let line = trim_line_end(raw);
                if (skip_header && line_number == 1) || line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if let Err((column, message)) = parse(&mut state, line, &mut spans) {
                    error_count += 1;
                    if errors.len() < ERRORS_SHOWN_MAX {
                        errors.push(LineError {
                            line: line_number,
                            column,
                            message,
                        });
                    }
                }
            }
        }
        (state, errors, error_count)
    };
    let mut read = |sender: std::sync::mpsc::SyncSender<(Vec<u8>, u64)>| -> anyhow::Result<()> {
        let mut carry: Vec<u8> = Vec::new();
        let mut next_line = 1u64;
        loop {
            let mut block = Vec::with_capacity(CHUNK_BYTES + carry.len() + 1);
            block.append(&mut carry);
            let want = CHUNK_BYTES.saturating_sub(block.len()).max(1 << 16);
            let got = (&mut file)
                .take(want as u64)
                .read_to_end(&mut block)
                .with_context(|| format!("cannot read {name}"))?;
            bar.inc(got as u64);
            let end_of_file = got == 0;
            if end_of_file {
                if !block.is_empty() && sender.send((block, next_line)).is_err() {
                    anyhow::bail!("the parsing threads stopped early");
                }
                return Ok(());
            }
            match block.iter().rposition(|&b| b == b'\n') {
                Some(last) => {
                    carry = block.split_off(last + 1);
                }
                None if block.len() > 4 * CHUNK_BYTES => {
                    anyhow::bail!(
                        "{name}:{next_line}: a line longer than {} MiB: is this a text file?",
                        (4 * CHUNK_BYTES) >> 20
                    );
                }
                None => {
                    carry = block;
                    continue;
                }
            }
            let lines = block.iter().filter(|&&b| b == b'\n').count() as u64;
            if sender.send((block, next_line)).is_err() {
                anyhow::bail!("the parsing threads stopped early");
            }
            next_line += lines;
        }
    };
    let (read_result, results) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|_| scope.spawn(worker)).collect();
        let read_result = read(sender);
        let results: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        (read_result, results)
    });
    read_result?;
    let mut scan = Scan {
        states: Vec::with_capacity(threads),
        errors: Vec::new(),
        error_count: 0,
    };
    for result in results {
        let Ok((state, errors, count)) = result else {
            anyhow::bail!("a parsing thread failed while reading {name}");
        };
        scan.states.push(state);
        scan.errors.extend(errors);
        scan.error_count += count;
    }
    scan.errors.sort_by_key(|e| e.line);
    scan.errors.truncate(ERRORS_SHOWN_MAX);
    Ok(scan)
}

/// Prints the bad lines the way `program validate` does and the refusal. Returns true when
/// there were any.
fn report_errors<S>(path: &Path, scan: &Scan<S>) -> bool {
    if scan.error_count == 0 {
        return false;
    }
    let name = path.display().to_string();
    for e in &scan.errors {
        eprintln!("{name}:{}:{}: error: {}", e.line, e.column, e.message);
    }
    let shown = scan.errors.len() as u64;
    if scan.error_count > shown {
        eprintln!("... and {} more", thousands(scan.error_count - shown));
    }
    eprintln!(
        "{name}: refused ({}); nothing was written",
        diagnostics::count(usize::try_from(scan.error_count).unwrap_or(usize::MAX))
    );
    true
}

/// A member id borrowed from a line.
enum IdRef<'a> {
    Number(u64),
    Text(&'a str),
}

fn member_id(field: &[u8], column: usize) -> Result<IdRef<'_>, Problem> {
    if field.is_empty() {
        return Err((column, "empty member id".into()));
    }
    if let Some(n) = canonical_number(field) {
        return Ok(IdRef::Number(n));
    }
    std::str::from_utf8(field)
        .map(IdRef::Text)
        .map_err(|_| (column, "the member id is not UTF-8 text".into()))
}

fn day(field: &[u8], column: usize) -> Result<Day, Problem> {
    Day::parse(field).map_err(|e| {
        (
            column,
            format!("{e}, found {:?}", String::from_utf8_lossy(field)),
        )
    })
}

fn amount(field: &[u8], column: usize, decimals: u32) -> Result<i64, Problem> {
    parse_minor(field, decimals).map_err(|e| {
        (
            column,
            format!("{e}, found {:?}", String::from_utf8_lossy(field)),
        )
    })
}

/// One transaction as read from a line.
struct Purchase<'a> {
    member: IdRef<'a>,
    day: Day,
    amount_minor: i64,
}

/// Where a transaction file keeps its columns.
#[derive(Debug, Clone, Copy)]
enum TransactionLayout {
    /// CSV: 0-based indexes of the member, date and amount columns.
    Csv {
        member: usize,
        date: usize,
        amount: usize,
    },
    /// Whitespace-separated: the number of fields and the member's field (0 or 1).
    Cdnow { fields: usize, member: usize },
}

/// Where one CSV field lies in its line.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    /// 1-based column of the field's first character (its opening quote if quoted).
    column: usize,
    /// Quoted with doubled quotes inside, to be unescaped.
    escaped: bool,
}

/// Splits a CSV line into the spans of its first `stop_after + 1` fields (all of them for
/// `usize::MAX`), handling quoted fields ("a,b" and "say ""hi""") and trimming spaces
/// around fields. The spans go into `out`, a buffer reused from line to line.
fn split_csv(line: &[u8], stop_after: usize, out: &mut Vec<Span>) -> Result<(), Problem> {
    out.clear();
    let blank = |b: u8| b == b' ' || b == b'\t';
    let mut position = 0usize;
    loop {
        while position < line.len() && blank(line[position]) {
            position += 1;
        }
        let column = position + 1;
        if position < line.len() && line[position] == b'"' {
            let start = position + 1;
            let mut cursor = start;
            let mut escaped = false;
            loop {
                match line[cursor..].iter().position(|&b| b == b'"') {
                    None => {
                        return Err((
                            column,
                            "a quoted field is not closed (a field may not span lines)".into(),
                        ));
                    }
                    Some(at) if line.get(cursor + at + 1) == Some(&b'"') => {
                        escaped = true;
                        cursor += at + 2;
                    }
                    Some(at) => {
                        cursor += at;
                        break;
                    }
                }
            }
            out.push(Span {
                start,
                end: cursor,
                column,
                escaped,
            });
            position = cursor + 1;
            while position < line.len() && blank(line[position]) {
                position += 1;
            }
            if position < line.len() && line[position] != b',' {
                return Err((position + 1, "text after a closing quote".into()));
            }
        } else {
            let end = line[position..]
                .iter()
                .position(|&b| b == b',')
                .map_or(line.len(), |at| position + at);
            let mut trimmed = end;
            while trimmed > position && blank(line[trimmed - 1]) {
                trimmed -= 1;
            }
            out.push(Span {
                start: position,
                end: trimmed,
                column,
                escaped: false,
            });
            position = end;
        }
        if out.len() > stop_after || position >= line.len() {
            return Ok(());
        }
        position += 1; // the comma
        if position == line.len() {
            out.push(Span {
                start: position,
                end: position,
                column: position + 1,
                escaped: false,
            });
            return Ok(());
        }
    }
}

/// [`split_csv`] up to field `last`, refusing lines with fewer fields.
fn csv_fields(line: &[u8], last: usize, out: &mut Vec<Span>) -> Result<(), Problem> {
    split_csv(line, last, out)?;
    if out.len() <= last {
        return Err((
            line.len() + 1,
            format!("{} fields, expected at least {}", out.len(), last + 1),
        ));
    }
    Ok(())
}

/// A field's bytes, unescaped when it was quoted with doubled quotes.
fn field(line: &[u8], span: Span) -> std::borrow::Cow<'_, [u8]> {
    let raw = &line[span.start..span.end];
    if !span.escaped {
        return std::borrow::Cow::Borrowed(raw);
    }
    let mut unescaped = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        unescaped.push(raw[i]);
        i += if raw[i] == b'"' { 2 } else { 1 };
    }
    std::borrow::Cow::Owned(unescaped)
}

/// The columns of a CSV header line, by name (lowercase, trimmed).
fn csv_header(line: &[u8]) -> Result<Vec<String>, Problem> {
    let mut spans = Vec::new();
    split_csv(line, usize::MAX, &mut spans)?;
    spans
        .iter()
        .map(|&span| {
            std::str::from_utf8(&field(line, span))
                .map(|s| s.trim().to_ascii_lowercase())
                .map_err(|_| (span.column, "the header is not UTF-8 text".to_string()))
        })
        .collect()
}

/// Finds the first of `names` among the header's columns.
fn column(header: &[String], names: &[&str]) -> Option<usize> {
    names
        .iter()
        .find_map(|n| header.iter().position(|h| h == n))
}

/// Works out the layout of a transactions file from its first line; the flag is true when
/// that line is a header to skip.
fn transaction_layout(
    path: &Path,
    format: TransactionFormat,
) -> Result<(TransactionLayout, bool), LineError> {
    let refuse = |column: usize, message: String| LineError {
        line: 1,
        column,
        message,
    };
    let first = first_line(path).map_err(|e| refuse(1, format!("{e:#}")))?;
    match format {
        TransactionFormat::Csv => {
            let header = csv_header(&first).map_err(|(c, m)| refuse(c, m))?;
            let find = |names: &[&str]| {
                column(&header, names).ok_or_else(|| {
                    refuse(1, format!(
                        "the header line has no {} column (found: {}); the first line must name the columns: member_id,date,amount",
                        names[0],
                        header.join(",")
                    ))
                })
            };
            let member = find(&["member_id", "member", "customer_id"])?;
            let date = find(&["date"])?;
            let amount = find(&["amount"])?;
            Ok((
                TransactionLayout::Csv {
                    member,
                    date,
                    amount,
                },
                true,
            ))
        }
        TransactionFormat::Cdnow => {
            let fields: Vec<&[u8]> = first
                .split(u8::is_ascii_whitespace)
                .filter(|f| !f.is_empty())
                .collect();
            let header = fields
                .first()
                .is_some_and(|f| !f.iter().all(u8::is_ascii_digit));
            let count = if header {
                if fields.len() != 4 {
                    return Err(refuse(
                        1,
                        format!(
                            "a CDNOW header has 4 columns (customer_id date number_of_cds dollar_value), found {}",
                            fields.len()
                        ),
                    ));
                }
                4
            } else {
                fields.len()
            };
            match count {
                4 => Ok((
                    TransactionLayout::Cdnow {
                        fields: 4,
                        member: 0,
                    },
                    header,
                )),
                5 => Ok((
                    TransactionLayout::Cdnow {
                        fields: 5,
                        member: 1,
                    },
                    false,
                )),
                n => Err(refuse(
                    1,
                    format!(
                        "{n} columns; CDNOW files have 4 (customer_id date number_of_cds dollar_value) or 5 (full id, sample id, date, CDs, dollars)"
                    ),
                )),
            }
        }
    }
}

/// Parses one transaction line and hands the purchase to `handle`.
fn parse_purchase(
    line: &[u8],
    layout: TransactionLayout,
    decimals: u32,
    spans: &mut Vec<Span>,
    handle: &mut dyn FnMut(Purchase<'_>),
) -> Result<(), Problem> {
    match layout {
        TransactionLayout::Csv {
            member,
            date,
            amount: amount_index,
        } => {
            csv_fields(line, member.max(date).max(amount_index), spans)?;
            let (id_span, date_span, amount_span) =
                (spans[member], spans[date], spans[amount_index]);
            let id_bytes = field(line, id_span);
            let purchase = Purchase {
                member: member_id(&id_bytes, id_span.column)?,
                day: day(&field(line, date_span), date_span.column)?,
                amount_minor: amount(&field(line, amount_span), amount_span.column, decimals)?,
            };
            handle(purchase);
            Ok(())
        }
        TransactionLayout::Cdnow {
            fields: expected,
            member,
        } => {
            // Fields and their 1-based columns, at most 5.
            let mut found: [(&[u8], usize); 5] = [(&[], 0); 5];
            let mut count = 0;
            let mut position = 0;
            while position < line.len() {
                while position < line.len() && line[position].is_ascii_whitespace() {
                    position += 1;
                }
                if position == line.len() {
                    break;
                }
                let start = position;
                while position < line.len() && !line[position].is_ascii_whitespace() {
                    position += 1;
                }
                if count == expected {
                    return Err((start + 1, format!("more than {expected} columns")));
                }
                found[count] = (&line[start..position], start + 1);
                count += 1;
            }
            if count != expected {
                return Err((
                    line.len() + 1,
                    format!("{count} columns, expected {expected}"),
                ));
            }
            let (id_field, id_column) = found[member];
            // CDNOW ids are numbers written with leading zeros: 00004 is member 4.
            if !id_field.iter().all(u8::is_ascii_digit) || id_field.len() > 19 {
                return Err((
                    id_column,
                    format!(
                        "the customer id must be a number, found {:?}",
                        String::from_utf8_lossy(id_field)
                    ),
                ));
            }
            let id = id_field
                .iter()
                .fold(0u64, |n, &c| n * 10 + u64::from(c - b'0'));
            let (date_field, date_column) = found[expected - 3];
            let (amount_field, amount_column) = found[expected - 1];
            handle(Purchase {
                member: IdRef::Number(id),
                day: day(date_field, date_column)?,
                amount_minor: amount(amount_field, amount_column, decimals)?,
            });
            Ok(())
        }
    }
}

/// Per-thread state of a transactions scan: the members' states and the lines skipped as
/// later than the cut-off day.
struct Members<S> {
    map: MemberMap<S>,
    later: u64,
}

/// Reads a transactions file into one member map: `add(state, day, amount)` for every
/// purchase on or before `until`, `merge` to combine threads. `None` when the file was
/// refused (already reported).
fn read_transactions<S, A, M>(
    path: &Path,
    format: TransactionFormat,
    decimals: u32,
    until: Day,
    add: A,
    merge: M,
) -> anyhow::Result<Option<(MemberMap<S>, u64)>>
where
    S: Default + Send,
    A: Fn(&mut S, Day, i64) + Sync,
    M: Fn(&mut S, S) + Copy,
{
    let (layout, skip_header) = match transaction_layout(path, format) {
        Ok(found) => found,
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
        skip_header,
        &bar,
        || Members::<S> {
            map: MemberMap::new(),
            later: 0,
        },
        |state, line, spans| {
            parse_purchase(line, layout, decimals, spans, &mut |p| {
                if p.day > until {
                    state.later += 1;
                    return;
                }
                let member = match p.member {
                    IdRef::Number(n) => state.map.number(n),
                    IdRef::Text(t) => state.map.text(t),
                };
                add(member, p.day, p.amount_minor);
            })
        },
    );
    bar.finish_and_clear();
    let scan = scan?;
    if report_errors(path, &scan) {
        return Ok(None);
    }
    let mut states = scan.states.into_iter();
    let Some(mut all) = states.next() else {
        return Ok(Some((MemberMap::new(), 0)));
    };
    for other in states {
        all.later += other.later;
        all.map.merge(other.map, merge);
    }
    Ok(Some((all.map, all.later)))
}

// ---------------------------------------------------------------------------------------
// Writing: to a temporary file next to the target, renamed into place when complete.

/// A file written next to its final name and renamed over it on [`Output::commit`], so a
/// failure never leaves a half-written file behind.
struct Output {
    target: PathBuf,
    temporary: PathBuf,
    writer: BufWriter<File>,
}

impl Output {
    fn create(target: &Path) -> anyhow::Result<Output> {
        let file_name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temporary =
            target.with_file_name(format!(".{file_name}.{}.partial", std::process::id()));
        let file = File::create(&temporary)
            .with_context(|| format!("cannot write {}", target.display()))?;
        Ok(Output {
            target: target.to_path_buf(),
            temporary,
            writer: BufWriter::with_capacity(1 << 20, file),
        })
    }

    fn commit(self) -> anyhow::Result<()> {
        let Output {
            target,
            temporary,
            writer,
        } = self;
        let result = writer
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|file| file.sync_all())
            .and_then(|()| std::fs::rename(&temporary, &target));
        if let Err(error) = result {
            let _ = std::fs::remove_file(&temporary);
            return Err(error).with_context(|| format!("cannot write {}", target.display()));
        }
        Ok(())
    }

    fn abandon(self) {
        let Output {
            temporary, writer, ..
        } = self;
        drop(writer);
        let _ = std::fs::remove_file(temporary);
    }
}

/// Writes a CSV field, quoted when it has to be.
fn write_field(out: &mut impl Write, text: &str) -> std::io::Result<()> {
    if text.contains([',', '"', '\n', '\r']) {
        write!(out, "\"{}\"", text.replace('"', "\"\""))
    } else {
        out.write_all(text.as_bytes())
    }
}

fn write_member(out: &mut impl Write, id: &MemberId) -> std::io::Result<()> {
    match id {
        MemberId::Number(n) => write!(out, "{n}"),
        MemberId::Text(t) => write_field(out, t),
    }
}

/// Writes the whole file with `body`, or leaves nothing behind.
fn write_file(
    target: &Path,
    body: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let mut output = Output::create(target)?;
    match body(&mut output.writer) {
        Ok(()) => output.commit(),
        Err(error) => {
            output.abandon();
            Err(error).with_context(|| format!("cannot write {}", target.display()))
        }
    }
}

// ---------------------------------------------------------------------------------------
// analyze rfm

fn run_rfm(args: RfmArgs) -> anyhow::Result<ExitCode> {
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

// ---------------------------------------------------------------------------------------
// analyze clv

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

fn run_clv(args: ClvArgs) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let name = args.transactions.display().to_string();
    let (customers, later) = if args.format == ClvFormat::Summary {
        match read_summary_file(&args.transactions)? {
            Some(customers) => (customers, 0),
            None => return Ok(ExitCode::FAILURE),
        }
    } else {
        let Some(calibration_end) = args.calibration_end else {
            eprintln!(
                "error: --calibration-end is required unless --format summary\n\nFor more information, try '--help'."
            );
            return Ok(ExitCode::from(2));
        };
        match read_clv_transactions(&args, calibration_end)? {
            Some(found) => found,
            None => return Ok(ExitCode::FAILURE),
        }
    };
    let read_time = started.elapsed();
    let data = BgNbdData::new(
        customers
            .iter()
            .map(|c| (c.summary.x, c.summary.t_x, c.summary.t_cal, 1.0)),
    )
    .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let fit_started = std::time::Instant::now();
    let bg = match bgnbd::fit(&data, FitOptions { threads: threads() }) {
        Ok(fit) => fit,
        Err(error) => {
            eprintln!("{name}: error: cannot fit the BG/NBD model: {error}");
            return Ok(ExitCode::FAILURE);
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
    let fit_time = fit_started.elapsed();

    if let Some(path) = &args.customers_out {
        let gg_params = gg.as_ref().map(|f| f.params);
        write_file(path, |out| {
            out.write_all(b"member_id,x,t_x,T,p_alive,expected_purchases,expected_spend\n")?;
            let mut line = String::with_capacity(128);
            for c in &customers {
                let CustomerSummary { x, t_x, t_cal, .. } = c.summary;
                let p_alive = bg.params.p_alive(x, t_x, t_cal);
                let expected = bg
                    .params
                    .expected_purchases(args.predict_weeks, x, t_x, t_cal);
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
        })?;
    }

    let se = bg.standard_errors;
    let gg_se = gg.as_ref().and_then(|f| f.standard_errors);
    if args.json {
        let report = serde_json::json!({
            "bgnbd": {
                "r": bg.params.r,
                "alpha": bg.params.alpha,
                "a": bg.params.a,
                "b": bg.params.b,
                "log_likelihood": bg.log_likelihood,
            },
            "gamma_gamma": gg.as_ref().map(|f| serde_json::json!({
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
            "customers": customers.len(),
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
    } else {
        let show = |value: f64, error: Option<f64>| match error {
            Some(e) => format!("{value:>12.6}  (± {e:.6})"),
            None => format!("{value:>12.6}"),
        };
        println!(
            "BG/NBD (time unit: weeks), {} customers, {} distinct (x, t_x, T)",
            thousands(customers.len() as u64),
            thousands(bg.distinct_tuples as u64)
        );
        println!("  r      {}", show(bg.params.r, se.map(|s| s.r)));
        println!("  alpha  {}", show(bg.params.alpha, se.map(|s| s.alpha)));
        println!("  a      {}", show(bg.params.a, se.map(|s| s.a)));
        println!("  b      {}", show(bg.params.b, se.map(|s| s.b)));
        println!("  log-likelihood {:.4}", bg.log_likelihood);
        match &gg {
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

// ---------------------------------------------------------------------------------------
// analyze baskets

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

fn run_baskets(args: BasketsArgs) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let path = &args.transactions;
    let name = path.display().to_string();
    let (layout, level) = match basket_layout(path, args.level) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("{name}:{}:{}: error: {}", e.line, e.column, e.message);
            eprintln!("{name}: refused; nothing was written");
            return Ok(ExitCode::FAILURE);
        }
    };
    let bar = progress_bar(path, "reading");
    let scan = scan(path, true, &bar, BasketLog::new, |log, line, spans| {
        parse_basket_line(line, layout, spans, log)
    });
    bar.finish_and_clear();
    let scan = scan?;
    if report_errors(path, &scan) {
        return Ok(ExitCode::FAILURE);
    }
    let mut logs = scan.states.into_iter();
    let mut log = logs.next().unwrap_or_default();
    for other in logs {
        log.merge(other);
    }
    let lines = log.lines();
    let baskets = log.finish();
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

    // Write both files before publishing either: a failure leaves neither behind.
    let mut line = String::with_capacity(256);
    let mut pairs_out = Output::create(&args.out)?;
    let written = (|| -> std::io::Result<()> {
        let out = &mut pairs_out.writer;
        out.write_all(
            b"level,a,b,baskets_with_both,support,confidence_a_to_b,confidence_b_to_a,lift\n",
        )?;
        for (level, report) in &reports {
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
    })();
    if let Err(error) = written {
        pairs_out.abandon();
        return Err(error).with_context(|| format!("cannot write {}", args.out.display()));
    }
    if let (Some(target), Some(next)) = (&args.next_out, &next) {
        let result = write_file(target, |out| {
            out.write_all(b"category,next_category,count,share\n")?;
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
        });
        if let Err(error) = result {
            pairs_out.abandon();
            return Err(error);
        }
    }
    pairs_out.commit()?;

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
