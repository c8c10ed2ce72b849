//! A strict parser and validator for the Prometheus text exposition
//! format 0.0.4, independent of heimdall-control's renderer, and a check
//! of the same text with `promtool` when it is installed. Used by the
//! control crate's rendering tests and by the server's end-to-end tests
//! of `GET /metrics`.

use std::collections::{BTreeMap, HashSet};

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's name (a histogram's `_bucket`, `_sum` or `_count` included).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// One metric family: HELP, TYPE and its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The family name.
    pub name: String,
    /// Its TYPE.
    pub kind: String,
    /// Its HELP text, unescaped.
    pub help: String,
    /// Its samples, in order.
    pub samples: Vec<Sample>,
}

/// A parsed, validated exposition.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Exposition {
    /// The families, in order.
    pub families: Vec<Family>,
}

impl Exposition {
    /// The family with this name.
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|family| family.name == name)
    }

    /// The value of the sample with this name and exactly these labels.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.families
            .iter()
            .flat_map(|family| family.samples.iter())
            .find(|sample| sample.name == name && sample.labels == wanted)
            .map(|sample| sample.value)
    }

    /// The sum of every sample named `name` whose labels include all of
    /// `filter` (for totals over cores, upstreams or rcodes).
    pub fn sum(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        self.families
            .iter()
            .flat_map(|family| family.samples.iter())
            .filter(|sample| {
                sample.name == name
                    && filter.iter().all(|(key, value)| {
                        sample.labels.get(*key).map(String::as_str) == Some(*value)
                    })
            })
            .map(|sample| sample.value)
            .sum()
    }
}

/// `promtool check metrics` on `text` (its lint findings count as a
/// failure): `None` when promtool is not installed (Debian's prometheus
/// package has it; the skip is printed, and under `CI=true` it is a
/// failure instead, see [`crate::peers`]), else what it said.
pub fn promtool_check(text: &str) -> Option<Result<(), String>> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    let promtool = crate::peers::find("promtool", "prometheus")?;
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(text.as_bytes()));
    let output = child.wait_with_output();
    Some(match (written, output) {
        (Some(Ok(())), Ok(output)) => {
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            if output.status.success() && stdout.trim().is_empty() && stderr.trim().is_empty() {
                Ok(())
            } else {
                Err(format!("{stdout}{stderr}"))
            }
        }
        _ => Err("could not run promtool".to_string()),
    })
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => text
            .parse::<f64>()
            .map_err(|_| format!("bad value {text:?}")),
    }
}

/// Parse `name{a="b",...} value [timestamp]`.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| format!("no value in {line:?}"))?;
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        let mut chars = after.char_indices().peekable();
        let consumed = loop {
            // Label name up to '='.
            let Some(&(start, first)) = chars.peek() else {
                return Err(format!("unterminated labels in {line:?}"));
            };
            if first == '}' {
                break start + 1;
            }
            let mut label = String::new();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                label.push(c);
            }
            if !is_label_name(&label) {
                return Err(format!("invalid label name {label:?} in {line:?}"));
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err(format!("label value not quoted in {line:?}"));
            }
            let mut value = String::new();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next().map(|(_, c)| c) {
                        Some('\\') => value.push('\\'),
                        Some('"') => value.push('"'),
                        Some('n') => value.push('\n'),
                        other => return Err(format!("bad escape {other:?} in {line:?}")),
                    },
                    '\n' => return Err("raw newline in label value".to_owned()),
                    _ => value.push(c),
                }
            }
            if !closed {
                return Err(format!("unterminated label value in {line:?}"));
            }
            if labels.insert(label.clone(), value).is_some() {
                return Err(format!("duplicate label {label:?} in {line:?}"));
            }
            match chars.next() {
                Some((_, ',')) => {
                    // A trailing comma before '}' is allowed by the format.
                    continue;
                }
                Some((i, '}')) => break i + 1,
                other => return Err(format!("expected , or }} got {other:?} in {line:?}")),
            }
        };
        rest = &after[consumed..];
    }
    let rest = rest
        .strip_prefix(' ')
        .ok_or_else(|| format!("no space before value in {line:?}"))?;
    let mut parts = rest.split(' ');
    let value = parse_value(parts.next().unwrap_or_default())?;
    if let Some(timestamp) = parts.next() {
        timestamp
            .parse::<i64>()
            .map_err(|_| format!("bad timestamp in {line:?}"))?;
    }
    if parts.next().is_some() {
        return Err(format!("trailing fields in {line:?}"));
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// The family a sample name belongs to, given the family's type.
fn belongs(family: &Family, sample: &str) -> bool {
    match family.kind.as_str() {
        "histogram" => ["_bucket", "_sum", "_count"]
            .iter()
            .any(|suffix| sample.strip_suffix(suffix) == Some(family.name.as_str())),
        "summary" => {
            sample == family.name
                || ["_sum", "_count"]
                    .iter()
                    .any(|suffix| sample.strip_suffix(suffix) == Some(family.name.as_str()))
        }
        _ => sample == family.name,
    }
}

/// Parse and validate strictly:
/// - every line ends in `\n`; no blank lines;
/// - `# HELP` and `# TYPE` (each once) come before the family's samples,
///   and every sample belongs to a declared family;
/// - families are contiguous and never repeated;
/// - metric and label names are valid, label values correctly escaped,
///   no duplicate labels or series;
/// - counters end in `_total` and are non-negative;
/// - histograms: every series has `le` buckets in increasing order with
///   non-decreasing counts, a `+Inf` bucket equal to `_count`, and a `_sum`.
pub fn parse(text: &str) -> Result<Exposition, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("exposition does not end with a line feed".to_owned());
    }
    let mut exposition = Exposition::default();
    let mut seen_families: HashSet<String> = HashSet::new();
    let mut seen_series: HashSet<(String, BTreeMap<String, String>)> = HashSet::new();
    // The family being filled and whether it has HELP / TYPE yet.
    let mut current: Option<Family> = None;
    let mut current_help = false;
    let mut current_type = false;
    let mut current_has_samples = false;

    for (number, line) in text.lines().enumerate() {
        let at = |message: String| format!("line {}: {message}", number + 1);
        if line.is_empty() {
            return Err(at("blank line".to_owned()));
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start_matches(' ').splitn(3, ' ');
            let keyword = words.next().unwrap_or_default();
            if keyword != "HELP" && keyword != "TYPE" {
                continue;
            }
            let name = words.next().unwrap_or_default();
            let rest = words.next().unwrap_or_default();
            if !is_metric_name(name) {
                return Err(at(format!("invalid metric name {name:?}")));
            }
            let same = current.as_ref().is_some_and(|family| family.name == name);
            if !same {
                if let Some(done) = current.take() {
                    exposition.families.push(done);
                }
                if !seen_families.insert(name.to_owned()) {
                    return Err(at(format!("family {name} appears twice")));
                }
                current = Some(Family {
                    name: name.to_owned(),
                    kind: "untyped".to_owned(),
                    help: String::new(),
                    samples: Vec::new(),
                });
                current_help = false;
                current_type = false;
                current_has_samples = false;
            }
            if current_has_samples {
                return Err(at(format!("{keyword} for {name} after its samples")));
            }
            let Some(family) = current.as_mut() else {
                return Err(at("no family".to_owned()));
            };
            if keyword == "HELP" {
                if current_help {
                    return Err(at(format!("second HELP for {name}")));
                }
                current_help = true;
                let mut help = String::new();
                let mut chars = rest.chars();
                while let Some(c) = chars.next() {
                    if c == '\\' {
                        match chars.next() {
                            Some('\\') => help.push('\\'),
                            Some('n') => help.push('\n'),
                            other => return Err(at(format!("bad HELP escape {other:?}"))),
                        }
                    } else {
                        help.push(c);
                    }
                }
                family.help = help;
            } else {
                if current_type {
                    return Err(at(format!("second TYPE for {name}")));
                }
                current_type = true;
                if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&rest) {
                    return Err(at(format!("unknown TYPE {rest:?}")));
                }
                family.kind = rest.to_owned();
            }
            continue;
        }
        let sample = parse_sample(line).map_err(at)?;
        let Some(family) = current.as_mut() else {
            return Err(at(format!("sample {} before any HELP/TYPE", sample.name)));
        };
        if !belongs(family, &sample.name) {
            return Err(at(format!(
                "sample {} outside its family (current family {})",
                sample.name, family.name
            )));
        }
        if !current_help || !current_type {
            return Err(at(format!(
                "sample {} before both HELP and TYPE",
                sample.name
            )));
        }
        if family.kind == "counter" {
            if !family.name.ends_with("_total") {
                return Err(at(format!(
                    "counter {} does not end in _total",
                    family.name
                )));
            }
            if sample.value.is_sign_negative() || sample.value.is_nan() {
                return Err(at(format!("counter {} is negative or NaN", sample.name)));
            }
        }
        if !seen_series.insert((sample.name.clone(), sample.labels.clone())) {
            return Err(at(format!(
                "duplicate series {} {:?}",
                sample.name, sample.labels
            )));
        }
        current_has_samples = true;
        family.samples.push(sample);
    }
    if let Some(done) = current.take() {
        exposition.families.push(done);
    }
    for family in &exposition.families {
        if family.kind == "histogram" {
            check_histogram(family)?;
        }
    }
    Ok(exposition)
}

fn check_histogram(family: &Family) -> Result<(), String> {
    let name = &family.name;
    let bucket_name = format!("{name}_bucket");
    let sum_name = format!("{name}_sum");
    let count_name = format!("{name}_count");
    // Series key: labels without `le`.
    let mut series: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
    let mut sums: HashSet<BTreeMap<String, String>> = HashSet::new();
    let mut counts: BTreeMap<BTreeMap<String, String>, f64> = BTreeMap::new();
    for sample in &family.samples {
        let mut key = sample.labels.clone();
        if sample.name == bucket_name {
            let le = key
                .remove("le")
                .ok_or_else(|| format!("{bucket_name} without le"))?;
            let bound = parse_value(&le)?;
            series.entry(key).or_default().push((bound, sample.value));
        } else {
            if key.contains_key("le") {
                return Err(format!("{} must not have an le label", sample.name));
            }
            if sample.name == sum_name {
                sums.insert(key);
            } else if sample.name == count_name {
                counts.insert(key, sample.value);
            }
        }
    }
    for (key, buckets) in &series {
        for (&(bound_a, count_a), &(bound_b, count_b)) in buckets.iter().zip(buckets.iter().skip(1))
        {
            if bound_b <= bound_a {
                return Err(format!("{name} {key:?}: le not increasing"));
            }
            if count_b < count_a {
                return Err(format!("{name} {key:?}: bucket counts decrease"));
            }
        }
        let Some(&(last_bound, last_count)) = buckets.last() else {
            return Err(format!("{name} {key:?}: no buckets"));
        };
        if last_bound != f64::INFINITY {
            return Err(format!("{name} {key:?}: no +Inf bucket"));
        }
        match counts.get(key) {
            Some(&count) if count == last_count => {}
            Some(&count) => {
                return Err(format!(
                    "{name} {key:?}: +Inf {last_count} != _count {count}"
                ));
            }
            None => return Err(format!("{name} {key:?}: no _count")),
        }
        if !sums.contains(key) {
            return Err(format!("{name} {key:?}: no _sum"));
        }
    }
    for key in counts.keys().chain(sums.iter()) {
        if !series.contains_key(key) {
            return Err(format!("{name} {key:?}: _sum/_count without buckets"));
        }
    }
    Ok(())
}
