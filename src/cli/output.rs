//! Writing command output: to stdout through [`outln!`], so that a closed pipe (`caravan ... | head`)
//! ends the command quietly instead of panicking as `println!` does.

/// `println!` that returns an `io::Result` instead of panicking when stdout is gone.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

pub(crate) use outln;

/// True if `err` comes from writing to a closed pipe, which is how a reader says it has enough.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
