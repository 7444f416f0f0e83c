//! A write acknowledged to a person survives `kill -9` at any moment: the
//! binary writes in a loop, acknowledging each document once it is on disk,
//! and is killed with SIGKILL at pseudo-random moments. After each kill the
//! store must open cleanly, hold every acknowledged document, and pass its
//! consistency check (indexes and counters included).

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

const ROUNDS: u64 = 50;

#[test]
fn acknowledged_writes_survive_sigkill() {
    let home = TestHome::new();
    let mut acked_total = BTreeSet::new();
    // A fixed LCG: the kill moments vary between rounds but are the same in every run.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for round in 0..ROUNDS {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let delay = Duration::from_millis(20 + (seed >> 33) % 150);

        let mut child = home
            .command(&["put", TRIP, "--jsonl"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            for i in 0..100_000u32 {
                let day = 1 + i % 28;
                let line = format!(
                    "{{\"id\": \"r{round}-{i}\", \"body\": {{\"start\": \"2026-02-{day:02}T08:00:00Z\", \"end\": \"2026-02-{day:02}T09:00:00Z\", \"date\": \"2026-02-{day:02}\", \"month\": \"2026-02\", \"distance_m\": {i}, \"duration_s\": 60, \"mode\": \"bike\"}}}}\n"
                );
                if stdin.write_all(line.as_bytes()).is_err() {
                    return; // killed
                }
            }
        });
        let acked = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().unwrap();
        let reader = {
            let acked = acked.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { return };
                    if let Some(id) = line.strip_prefix("ok ") {
                        acked.lock().unwrap().push(id.to_owned());
                    }
                }
            })
        };
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        writer.join().unwrap();
        reader.join().unwrap();
        acked_total.extend(acked.lock().unwrap().drain(..));

        let stored: BTreeSet<String> = home.docs(TRIP).iter().map(|d| d["id"].as_str().unwrap().to_owned()).collect();
        let lost: Vec<&String> = acked_total.difference(&stored).collect();
        assert!(lost.is_empty(), "round {round}: acknowledged but lost after SIGKILL: {lost:?}");
        let check = home.run(&["check"]);
        assert!(check.ok, "round {round}: {}", check.stderr);
    }
    println!("{} acknowledged writes survived {ROUNDS} SIGKILLs", acked_total.len());
    assert!(acked_total.len() as u64 > ROUNDS, "the writer must have written in most rounds: {}", acked_total.len());
}
