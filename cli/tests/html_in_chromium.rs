//! The HTML timeline in a real browser: Debian's chromium, headless, opens the page a watch of
//! a leaking program wrote, from disk. Checked: the script ran to its end with no error (the
//! page marks `<body data-rendered="ok">` last, and records any error in `#script-errors`;
//! chromium's console shows no uncaught exception), and the screenshot shows the timeline —
//! the leaking backend's red area is drawn, and it is taller on the right than on the left,
//! which is the leak "visible at a glance". Also: the page is self-contained (no URL, no
//! external resource), and `fdguard html DIR` redraws exactly the page the watch wrote.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::subjects::{Server, Subject};
use common::{assert_status, compile_c, fdguard, scratch, stderr};

/// The leaking backend's colour (first series) = CLOSE_WAIT's colour: #d62728.
const LEAK_RED: [u8; 3] = [0xd6, 0x27, 0x28];
/// The healthy pool's backend (second series): #1f77b4.
const POOL_BLUE: [u8; 3] = [0x1f, 0x77, 0xb4];

/// A decoded 8-bit RGB or RGBA PNG (what chromium writes): width, height, RGB pixels.
struct Image {
    width: usize,
    height: usize,
    rgb: Vec<[u8; 3]>,
}

fn decode_png(bytes: &[u8]) -> Image {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let mut at = 8;
    let (mut width, mut height, mut channels) = (0usize, 0usize, 0usize);
    let mut compressed = Vec::new();
    while at + 8 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let kind = &bytes[at + 4..at + 8];
        let data = &bytes[at + 8..at + 8 + len];
        match kind {
            b"IHDR" => {
                width = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                height = u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize;
                assert_eq!(data[8], 8, "8-bit samples");
                channels = match data[9] {
                    2 => 3,
                    6 => 4,
                    other => panic!("colour type {other}"),
                };
                assert_eq!(data[12], 0, "not interlaced");
            }
            b"IDAT" => compressed.extend_from_slice(data),
            b"IEND" => break,
            _ => {}
        }
        at += 12 + len;
    }
    let raw = miniz_oxide::inflate::decompress_to_vec_zlib(&compressed).expect("zlib data");
    let stride = width * channels;
    assert_eq!(raw.len(), height * (stride + 1));
    let mut pixels = vec![0u8; height * stride];
    for y in 0..height {
        let filter = raw[y * (stride + 1)];
        let line = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
        for x in 0..stride {
            let a = if x >= channels {
                pixels[y * stride + x - channels]
            } else {
                0
            };
            let b = if y > 0 {
                pixels[(y - 1) * stride + x]
            } else {
                0
            };
            let c = if y > 0 && x >= channels {
                pixels[(y - 1) * stride + x - channels]
            } else {
                0
            };
            let predicted = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                4 => {
                    let p = i16::from(a) + i16::from(b) - i16::from(c);
                    let (pa, pb, pc) = (
                        (p - i16::from(a)).abs(),
                        (p - i16::from(b)).abs(),
                        (p - i16::from(c)).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                other => panic!("PNG filter {other}"),
            };
            pixels[y * stride + x] = line[x].wrapping_add(predicted);
        }
    }
    let rgb = pixels
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    Image { width, height, rgb }
}

impl Image {
    /// Pixels of exactly `colour` with x in `columns`.
    fn count(&self, colour: [u8; 3], columns: std::ops::Range<usize>) -> usize {
        (0..self.height)
            .flat_map(|y| columns.clone().map(move |x| (x, y)))
            .filter(|&(x, y)| self.rgb[y * self.width + x] == colour)
            .count()
    }
}

/// Runs headless chromium on `page`: returns (the DOM after scripts ran, chromium's log).
fn chromium(page: &Path, screenshot: &Path, profile: &Path) -> (String, String) {
    let child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--window-size=1000,1700",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run chromium ({e}): bash tests/support/install-deps.sh installs it")
        });
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let output = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("chromium did not finish within 120 s");
        }
    };
    assert!(
        output.status.success(),
        "chromium failed: {}",
        stderr(&output)
    );
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr(&output),
    )
}

#[test]
fn the_timeline_draws_in_chromium_without_script_errors() {
    let dir = scratch("html-chromium");
    let leaker = compile_c("leaker.c", &dir, &[]);
    let backend = Server::hanging_up();
    let pool = Server::keeping();
    let pidfile = dir.join("leaker.pid");
    let mut subject = Subject::start(
        &leaker,
        &[
            backend.port.to_string(),
            "600".to_string(),
            "100".to_string(),
            pidfile.display().to_string(),
            pool.port.to_string(),
        ],
    );
    subject.wait_for_file(&pidfile);
    let out = dir.join("watch");
    let output = fdguard()
        .args(["watch", &subject.pid.to_string()])
        .args(["--every", "300ms", "--for", "2500ms", "--grace-ms", "1000"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_status(&output, 0);
    drop(subject);
    let page = out.join("timeline.html");
    let html = std::fs::read_to_string(&page).unwrap();

    // Self-contained: nothing to fetch.
    for needle in ["http://", "https://", " src=", "<link", "@import", "url("] {
        assert!(!html.contains(needle), "the page refers to {needle}");
    }
    // `fdguard html DIR` draws the same page from the samples.
    let redrawn = dir.join("redrawn.html");
    let output = fdguard()
        .arg("html")
        .arg(&out)
        .arg("-o")
        .arg(&redrawn)
        .output()
        .unwrap();
    assert_status(&output, 0);
    assert_eq!(std::fs::read_to_string(&redrawn).unwrap(), html);

    let shot = dir.join("timeline.png");
    let (dom, log) = chromium(&page, &shot, &dir.join("chromium-profile"));
    assert!(
        dom.contains(r#"<body data-rendered="ok">"#),
        "the script did not finish cleanly:\n{}",
        dom.lines().take(5).collect::<Vec<_>>().join("\n")
    );
    assert!(
        dom.contains(r#"<pre id="script-errors" hidden=""></pre>"#),
        "script errors recorded"
    );
    for line in log.lines() {
        assert!(
            !(line.contains("Uncaught") || line.contains(":CONSOLE")),
            "chromium console: {line}"
        );
    }

    let image = decode_png(&std::fs::read(&shot).unwrap());
    assert_eq!((image.width, image.height), (1000, 1700));
    let half = image.width / 2;
    let (left, right) = (
        image.count(LEAK_RED, 0..half),
        image.count(LEAK_RED, half..image.width),
    );
    assert!(
        left + right > 5_000,
        "the leaking backend's area is drawn ({left} + {right} red pixels)"
    );
    assert!(
        right > left + left / 4,
        "the leak grows to the right: {left} red pixels on the left, {right} on the right"
    );
    assert!(
        image.count(POOL_BLUE, 0..image.width) > 200,
        "the healthy pool's band is drawn"
    );
}
