//! What kind of deployment the server is, from its `hello` answer: transactions need a replica set
//! or a sharded cluster.

use mongodb::Database;
use mongodb::bson::{Document, doc};

use crate::error::{Error, Result};

/// The kind of deployment, as `hello` tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deployment {
    /// A single `mongod` without a replica set: no transactions.
    Standalone,
    /// A replica set member (`setName` in `hello`).
    ReplicaSet,
    /// A `mongos` router (`msg: "isdbgrid"` in `hello`).
    Sharded,
}

impl Deployment {
    /// Reads the kind from a `hello` reply.
    ///
    /// ```
    /// use schema_runtime::bson::doc;
    /// use schema_runtime::Deployment;
    ///
    /// assert_eq!(Deployment::from_hello(&doc! { "isWritablePrimary": true }), Deployment::Standalone);
    /// assert_eq!(Deployment::from_hello(&doc! { "setName": "rs0" }), Deployment::ReplicaSet);
    /// assert_eq!(Deployment::from_hello(&doc! { "msg": "isdbgrid" }), Deployment::Sharded);
    /// ```
    pub fn from_hello(hello: &Document) -> Self {
        if hello.get_str("msg").ok() == Some("isdbgrid") {
            Deployment::Sharded
        } else if hello.contains_key("setName") {
            Deployment::ReplicaSet
        } else {
            Deployment::Standalone
        }
    }

    /// Asks the server (one `hello`).
    pub async fn detect(database: &Database) -> Result<Self> {
        let hello = database
            .run_command(doc! { "hello": 1 })
            .await
            .map_err(|e| Error::database("asking the server what it is (hello)", None, e))?;
        Ok(Self::from_hello(&hello))
    }

    /// Whether change streams are available (a replica set or a sharded cluster).
    pub fn supports_change_streams(self) -> bool {
        !matches!(self, Deployment::Standalone)
    }

    /// Whether multi-document transactions are available.
    pub fn supports_transactions(self) -> bool {
        !matches!(self, Deployment::Standalone)
    }
}
