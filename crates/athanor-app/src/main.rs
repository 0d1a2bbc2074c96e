//! The `athanor` server binary: `DATABASE_URL` selects the database (default `sqlite://athanor.db`),
//! `ATHANOR_ADDR` the address (default `127.0.0.1:3000`), `ATHANOR_EXPERIMENTS` the manifest of command experiments
//! (default `./athanor.toml` when present).
//!
//! A crate of your own can be the server too, with your Rust experiments compiled in: depend on `athanor-app`
//! (feature `ssr`) and `athanor-runtime`, `register_experiment!` your types, and call
//! [`athanor_app::server::main`] from your `main` — exactly what this file does.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    athanor_app::server::main().await
}
