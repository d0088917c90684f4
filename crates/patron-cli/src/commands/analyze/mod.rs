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

mod baskets;
mod clv;
mod read;
mod rfm;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use self::baskets::run_baskets;
use self::clv::run_clv;
use self::rfm::run_rfm;
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use patron_analytics::date::Day;
use patron_analytics::member::MemberId;

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
