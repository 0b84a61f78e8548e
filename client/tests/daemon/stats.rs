//! `berthctl stats` one-shot: a table with a row per running container and
//! its memory, and the same sample as JSON.

use serde_json::Value;

use super::{NamespaceCgroups, named_container, with_image};

/// Whether `text` is a size as `human_size` prints it (`0B`, `1.5kB`, `12MB`).
fn is_size(text: &str) -> bool {
    let unit_at = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(unit_at);
    number.parse::<f64>().is_ok() && ["B", "kB", "MB", "GB", "TB", "PB"].contains(&unit)
}

#[test]
fn stats_no_stream_prints_a_table_row_and_json_per_container() {
    let Some((d, ns, image)) =
        with_image("stats_no_stream_prints_a_table_row_and_json_per_container")
    else {
        return;
    };
    let _cgroups = NamespaceCgroups(ns.clone());
    let (name, _guard) = named_container(&d, &ns, "stats");
    let printed = d.ok(&ns, &["run", "-d", "--name", &name, &image, "sleep", "300"]);
    assert_eq!(printed.trim(), name);

    let table = d.ok(&ns, &["stats", "--no-stream"]);
    let mut lines = table.lines();
    let header = lines.next().expect("header line");
    for column in ["CONTAINER", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"] {
        assert!(header.contains(column), "{column} missing: {table}");
    }
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "one running container: {table}");
    let row = rows[0];
    assert!(row.starts_with(&name), "{table}");
    // The memory column starts where its header does: "<usage> / <limit>".
    let mem_at = header.find("MEM USAGE").expect("mem column");
    let mem: Vec<&str> = row[mem_at..].split_whitespace().take(3).collect();
    assert_eq!(mem.len(), 3, "{row}");
    assert!(is_size(mem[0]), "usage {:?} in {row}", mem[0]);
    assert_eq!(mem[1], "/", "{row}");
    assert!(is_size(mem[2]) || mem[2] == "unlimited", "limit in {row}");
    let pids: u64 = row
        .split_whitespace()
        .last()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("pids in {row}"));
    assert!(pids >= 1, "{row}");

    // The same container by id, as JSON.
    let json: Value =
        serde_json::from_str(&d.ok(&ns, &["stats", "--no-stream", "--format", "json", &name]))
            .expect("stats json");
    let entries = json.as_array().expect("array");
    assert_eq!(entries.len(), 1, "{json}");
    let e = &entries[0];
    assert_eq!(e["id"], name.as_str());
    assert!(
        e["memory_usage"].as_u64().is_some_and(|m| m > 0),
        "a running sleep uses memory: {e}"
    );
    assert!(e["pids"].as_u64().is_some_and(|p| p >= 1), "{e}");
    assert!(e["cpu_percent"].as_f64().is_some(), "{e}");
}
