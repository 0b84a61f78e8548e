use std::time::Duration;

use nix::sys::stat::Mode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

fn fifo(dir: &Path, name: &str) -> String {
    let p = dir.join(name);
    nix::unistd::mkfifo(&p, Mode::from_bits_truncate(0o600)).expect("mkfifo");
    p.display().to_string()
}

#[test]
fn targets_are_classified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = fifo(dir.path(), "out");
    assert_eq!(target("").expect("null"), Target::Null);
    assert_eq!(target(&f).expect("fifo"), Target::Fifo(f.clone().into()));
    assert_eq!(
        target("file:///var/log/x.log").expect("file"),
        Target::File("/var/log/x.log".into())
    );
    assert_eq!(
        target("/var/log/y.log").expect("plain path"),
        Target::File("/var/log/y.log".into())
    );
    let err = target("binary:///usr/bin/logger").expect_err("binary");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(StdioPaths::default().wants_container_log());
    let to_file = StdioPaths {
        stdout: "file:///tmp/x".into(),
        ..Default::default()
    };
    assert!(!to_file.wants_container_log());
}

#[tokio::test]
async fn output_reaches_fifo_file_and_log_and_drain_closes_the_fifo() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = fifo(dir.path(), "stdout");
    let err_file = dir.path().join("err.log");
    let paths = StdioPaths {
        stdout: out.clone(),
        stderr: format!("file://{}", err_file.display()),
        ..Default::default()
    };
    // The client (ctr) opens its read end.
    let mut client = pipe::OpenOptions::new()
        .open_receiver(&out)
        .expect("client reader");
    let log = container_log(dir.path(), &paths);
    assert!(log.is_some());
    let (pending, child) = ProcIo::pipes(&paths, log).expect("pipes");
    assert!(child.stdin.is_none());
    let w_out = child.stdout.expect("stdout pipe");
    let w_err = child.stderr.expect("stderr pipe");
    // Written between create and the copies' start: the pipes keep it.
    nix::unistd::write(&w_out, b"out\n").expect("write stdout");
    let io = pending.start();
    nix::unistd::write(&w_err, b"err\n").expect("write stderr");
    // The process exits: its ends close.
    drop((w_out, w_err));
    io.drain(Duration::from_secs(10)).await;
    let mut got = String::new();
    client.read_to_string(&mut got).await.expect("read to EOF");
    assert_eq!(got, "out\n");
    assert_eq!(
        std::fs::read_to_string(&err_file).expect("err log"),
        "err\n"
    );
    let log = std::fs::read_to_string(dir.path().join("container.log")).expect("container.log");
    assert!(
        log.contains(r#""stream":"stdout""#) && log.contains(r#""log":"out\n""#),
        "{log}"
    );
    assert!(log.contains(r#""stream":"stderr""#), "{log}");
}

#[tokio::test]
async fn stdin_sees_eof_only_after_close_io() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inp = fifo(dir.path(), "stdin");
    let paths = StdioPaths {
        stdin: inp.clone(),
        ..Default::default()
    };
    let (pending, child) = ProcIo::pipes(&paths, None).expect("pipes");
    let io = pending.start();
    let mut proc_stdin =
        pipe::Receiver::from_owned_fd(child.stdin.expect("stdin pipe")).expect("receiver");
    let mut client = pipe::OpenOptions::new()
        .open_sender(&inp)
        .expect("client writer");
    client.write_all(b"hello").await.expect("client write");
    drop(client);
    let mut buf = [0u8; 5];
    proc_stdin.read_exact(&mut buf).await.expect("data");
    assert_eq!(&buf, b"hello");
    // The client closed, but our writer keeps the FIFO open: no EOF yet.
    let early = tokio::time::timeout(Duration::from_millis(100), proc_stdin.read(&mut buf)).await;
    assert!(early.is_err(), "stdin must stay open until CloseIO");
    io.close_stdin();
    let n = tokio::time::timeout(Duration::from_secs(10), proc_stdin.read(&mut buf))
        .await
        .expect("EOF after CloseIO")
        .expect("read");
    assert_eq!(n, 0);
}

#[tokio::test]
async fn output_without_reader_does_not_fail_the_process() {
    // run -d: the client is gone; the keep-alive handle means no EPIPE.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = fifo(dir.path(), "stdout");
    let paths = StdioPaths {
        stdout: out,
        ..Default::default()
    };
    let (pending, child) = ProcIo::pipes(&paths, None).expect("pipes");
    let io = pending.start();
    let w = child.stdout.expect("stdout");
    nix::unistd::write(&w, b"nobody reads this\n").expect("write succeeds");
    drop(w);
    io.drain(Duration::from_secs(10)).await;
}

#[tokio::test]
async fn unstarted_pipes_are_closed_unread() {
    // A failed create: the runtime wrote its error to the process's stderr
    // and exited; nothing of it may reach the client or container.log.
    let dir = tempfile::tempdir().expect("tempdir");
    let (out, err) = (fifo(dir.path(), "stdout"), fifo(dir.path(), "stderr"));
    let inp = fifo(dir.path(), "stdin");
    let paths = StdioPaths {
        stdin: inp,
        stdout: out.clone(),
        stderr: err.clone(),
        terminal: false,
    };
    let mut client_out = pipe::OpenOptions::new()
        .open_receiver(&out)
        .expect("client stdout reader");
    let mut client_err = pipe::OpenOptions::new()
        .open_receiver(&err)
        .expect("client stderr reader");
    let log = container_log(dir.path(), &paths);
    let (pending, child) = ProcIo::pipes(&paths, log).expect("pipes");
    let w_err = child.stderr.expect("stderr pipe");
    nix::unistd::write(&w_err, b"runtime: exec failed\n").expect("write stderr");
    drop((child.stdin, child.stdout, w_err));
    tokio::task::yield_now().await;
    drop(pending);
    // Our read-write FIFO handles are gone: the client reads EOF, no data.
    for client in [&mut client_out, &mut client_err] {
        let mut got = String::new();
        tokio::time::timeout(Duration::from_secs(10), client.read_to_string(&mut got))
            .await
            .expect("EOF once the pipes are dropped")
            .expect("read");
        assert_eq!(got, "");
    }
    let log = std::fs::read_to_string(dir.path().join("container.log")).unwrap_or_default();
    assert!(!log.contains("exec failed"), "{log}");
}
