//! `auditlog`: the command-line tool.

fn main() -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
