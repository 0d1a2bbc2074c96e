//! The `athanor` server binary: `DATABASE_URL` selects the database (default `sqlite://athanor.db`),
//! `ATHANOR_ADDR` the address (default `127.0.0.1:3000`).

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    athanor_app::server::init_tracing();
    let config = athanor_app::server::Config::from_env()?;
    let server = athanor_app::server::start(config).await?;
    tracing::info!("Athanor is serving http://{}", server.addr);
    server.wait().await
}
