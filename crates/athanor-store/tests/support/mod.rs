//! A throwaway database per test: a SQLite file in a temp dir, or a fresh PostgreSQL database that is dropped
//! when the test ends (pass or fail).

use athanor_core::{Description, ExperimentName, InstanceDraft, InstanceName};
use athanor_store::Store;
use serde_json::json;

/// The PostgreSQL server tests create their databases on; `ATHANOR_TEST_POSTGRES` overrides it.
pub fn postgres_admin_url() -> String {
    std::env::var("ATHANOR_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub struct TestDb {
    pub store: Store,
    _guard: Guard,
}

enum Guard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { name: String },
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let store = Store::connect(&url).await.expect("open SQLite");
        TestDb { store, _guard: Guard::Sqlite(dir) }
    }

    pub async fn postgres() -> TestDb {
        let name = format!("athanor_test_{}", uuid::Uuid::new_v4().simple());
        let admin = postgres_admin_url();
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
            .await
            .unwrap_or_else(|err| panic!("PostgreSQL must run at {admin} for these tests: {err}"));
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
        let url = match admin.rsplit_once('/') {
            Some((server, _db)) => format!("{server}/{name}"),
            None => panic!("admin URL {admin} has no database part"),
        };
        let store = Store::connect(&url).await.expect("open PostgreSQL");
        TestDb { store, _guard: Guard::Postgres { name } }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Guard::Postgres { name } = &self._guard {
            let name = name.clone();
            // Drop runs outside any async context we could await in, so use a short-lived runtime on a thread.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                runtime.block_on(async move {
                    if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&postgres_admin_url()).await
                    {
                        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut conn)
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

pub fn draft(name: &str) -> InstanceDraft {
    InstanceDraft {
        experiment: ExperimentName::parse("training_curve").unwrap(),
        name: InstanceName::parse(name).unwrap(),
        description: Description::parse("a test instance").unwrap(),
        config: json!({"epochs": 10, "api": {"timeout": 30}, "pairs": [{"a": "x", "runs": 2}]}),
    }
}

/// Generate one test per backend from an `async fn(Store)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let db = $crate::support::TestDb::sqlite().await;
                    super::$name(db.store.clone()).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let db = $crate::support::TestDb::postgres().await;
                    super::$name(db.store.clone()).await;
                }
            }
        )*
    };
}
