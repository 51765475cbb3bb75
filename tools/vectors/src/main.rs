//! `vectors`: writes the test vectors of test-vectors/v1 (see test-vectors/README.md).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("not generated yet")
}
