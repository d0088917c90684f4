//! Reading the input files: blocks of lines cut at line ends and parsed on several threads
//! into per-thread states, merged at the end; bad lines reported as `FILE:LINE:COLUMN`.

use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::Path;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use patron_analytics::amount::parse_minor;
use patron_analytics::date::Day;
use patron_analytics::member::{MemberMap, canonical_number};

use super::{CHUNK_BYTES, ERRORS_SHOWN_MAX, PROGRESS_FROM_BYTES, THREADS_MAX, TransactionFormat};
use crate::diagnostics;
use crate::store::thousands;

/// A problem with one line, 1-based.
#[derive(Debug, Clone)]
pub(super) struct LineError {
    pub(super) line: u64,
    pub(super) column: usize,
    pub(super) message: String,
}

/// A problem in a line: (1-based column, message).
pub(super) type Problem = (usize, String);

/// What the threads of a scan produced.
pub(super) struct Scan<S> {
    pub(super) states: Vec<S>,
    /// The first [`ERRORS_SHOWN_MAX`] bad lines by line number.
    pub(super) errors: Vec<LineError>,
    pub(super) error_count: u64,
}

/// Threads to parse with: the machine's cores, at most [`THREADS_MAX`].
pub(super) fn threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, THREADS_MAX)
}

/// The first non-blank line of the file (at most 64 KiB of it), without its line end.
pub(super) fn first_line(path: &Path) -> anyhow::Result<Vec<u8>> {
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

pub(super) fn trim_line_end(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

pub(super) fn progress_bar(path: &Path, label: &str) -> ProgressBar {
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
pub(super) fn scan<S, N, P>(
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
    let (sender, receiver) = sync_channel::<Block>(threads * 2);
    let receiver = Mutex::new(receiver);
    let worker = || parse_blocks(&receiver, skip_header, &new_state, &parse);
    let mut read = |sender: SyncSender<Block>| read_blocks(&mut file, &name, bar, &sender);
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

/// A block of whole lines and the number of its first line.
type Block = (Vec<u8>, u64);

/// One parsing thread: takes blocks until the reader is done and parses their lines into its
/// own state; answers the state, the first bad lines and how many there were.
fn parse_blocks<S, N, P>(
    receiver: &Mutex<Receiver<Block>>,
    skip_header: bool,
    new_state: &N,
    parse: &P,
) -> (S, Vec<LineError>, u64)
where
    N: Fn() -> S,
    P: Fn(&mut S, &[u8], &mut Vec<Span>) -> Result<(), Problem>,
{
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
}

/// The reader: cuts the file into blocks of about [`CHUNK_BYTES`] at line ends and sends
/// them, numbered, to the parsing threads.
fn read_blocks(
    file: &mut File,
    name: &str,
    bar: &ProgressBar,
    sender: &SyncSender<Block>,
) -> anyhow::Result<()> {
    let mut carry: Vec<u8> = Vec::new();
    let mut next_line = 1u64;
    loop {
        let mut block = Vec::with_capacity(CHUNK_BYTES + carry.len() + 1);
        block.append(&mut carry);
        let want = CHUNK_BYTES.saturating_sub(block.len()).max(1 << 16);
        let got = file
            .by_ref()
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
}

/// Prints the bad lines the way `program validate` does and the refusal. Returns true when
/// there were any.
pub(super) fn report_errors<S>(path: &Path, scan: &Scan<S>) -> bool {
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
pub(super) enum IdRef<'a> {
    Number(u64),
    Text(&'a str),
}

pub(super) fn member_id(field: &[u8], column: usize) -> Result<IdRef<'_>, Problem> {
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

pub(super) fn day(field: &[u8], column: usize) -> Result<Day, Problem> {
    Day::parse(field).map_err(|e| {
        (
            column,
            format!("{e}, found {:?}", String::from_utf8_lossy(field)),
        )
    })
}

pub(super) fn amount(field: &[u8], column: usize, decimals: u32) -> Result<i64, Problem> {
    parse_minor(field, decimals).map_err(|e| {
        (
            column,
            format!("{e}, found {:?}", String::from_utf8_lossy(field)),
        )
    })
}

/// One transaction as read from a line.
pub(super) struct Purchase<'a> {
    pub(super) member: IdRef<'a>,
    pub(super) day: Day,
    pub(super) amount_minor: i64,
}

/// Where a transaction file keeps its columns.
#[derive(Debug, Clone, Copy)]
pub(super) enum TransactionLayout {
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
pub(super) struct Span {
    pub(super) start: usize,
    pub(super) end: usize,
    /// 1-based column of the field's first character (its opening quote if quoted).
    pub(super) column: usize,
    /// Quoted with doubled quotes inside, to be unescaped.
    pub(super) escaped: bool,
}

/// Splits a CSV line into the spans of its first `stop_after + 1` fields (all of them for
/// `usize::MAX`), handling quoted fields ("a,b" and "say ""hi""") and trimming spaces
/// around fields. The spans go into `out`, a buffer reused from line to line.
pub(super) fn split_csv(
    line: &[u8],
    stop_after: usize,
    out: &mut Vec<Span>,
) -> Result<(), Problem> {
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
pub(super) fn csv_fields(line: &[u8], last: usize, out: &mut Vec<Span>) -> Result<(), Problem> {
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
pub(super) fn field(line: &[u8], span: Span) -> std::borrow::Cow<'_, [u8]> {
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
pub(super) fn csv_header(line: &[u8]) -> Result<Vec<String>, Problem> {
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
pub(super) fn column(header: &[String], names: &[&str]) -> Option<usize> {
    names
        .iter()
        .find_map(|n| header.iter().position(|h| h == n))
}

/// Works out the layout of a transactions file from its first line; the flag is true when
/// that line is a header to skip.
pub(super) fn transaction_layout(
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
pub(super) fn parse_purchase(
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
pub(super) struct Members<S> {
    pub(super) map: MemberMap<S>,
    pub(super) later: u64,
}

/// Reads a transactions file into one member map: `add(state, day, amount)` for every
/// purchase on or before `until`, `merge` to combine threads. `None` when the file was
/// refused (already reported).
pub(super) fn read_transactions<S, A, M>(
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
