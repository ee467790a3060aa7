//! The Immuta calls the engine makes, as a trait: refresh reads through it, the applier
//! writes through it. [`ImmutaClient`] implements it over HTTP; the engine's unit tests use an
//! in-memory fake (`immuta::fake`), so the planner and the applier are tested without a server.
//!
//! Each method is the client's method of the same name and keeps its meaning (what counts as
//! `None`, which errors leave an outcome unknown); see `connctl_immuta::client`.

use std::future::Future;

use connctl_immuta::{
    ApiError, ImmutaClient, Job, LiveConnection, LiveIntegration, LiveObject, ObjectHit, Registered, Script,
};
use serde_json::Value;

#[cfg(test)]
pub mod fake;

/// The Immuta API as the engine uses it. Futures are `Send` so workers can run on any thread.
pub trait Immuta: Clone + Send + Sync + 'static {
    /// `POST /data/object/search`, every page: the connections Immuta lists. `expected` (how
    /// many the state records) lets the pages be asked at once, at most `in_flight` of them
    /// ([`connctl_immuta::pages_at_once`]).
    fn list_connections(
        &self,
        expected: usize,
        in_flight: usize,
    ) -> impl Future<Output = Result<Vec<ObjectHit>, ApiError>> + Send;
    /// `GET /data/connection/{key}`; `None` on 404.
    fn get_connection(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<LiveConnection>, ApiError>> + Send;
    /// `GET /data/object/{key}`; `None` on 404.
    fn get_object(&self, key: &str) -> impl Future<Output = Result<Option<LiveObject>, ApiError>> + Send;
    /// `GET /integrations/{id}`; `None` on 404.
    fn get_integration(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<LiveIntegration>, ApiError>> + Send;
    /// `POST /data/object/search/{key}`: how many objects are below a connection.
    fn count_children(&self, key: &str) -> impl Future<Output = Result<Option<u64>, ApiError>> + Send;
    /// `POST /integrations/scripts/create`.
    fn create_script(&self, body: &Value) -> impl Future<Output = Result<Script, ApiError>> + Send;
    /// `POST /integrations/{id}/scripts/edit`.
    fn edit_script(
        &self,
        integration_id: &str,
        body: &Value,
    ) -> impl Future<Output = Result<Script, ApiError>> + Send;
    /// `POST /integrations/{id}/scripts/delete`.
    fn delete_script(&self, integration_id: &str) -> impl Future<Output = Result<Script, ApiError>> + Send;
    /// `POST /data/connection/test`: the dry run.
    fn test_connection(&self, registration: &Value) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// `POST /data/connection`.
    fn register(&self, registration: &Value) -> impl Future<Output = Result<Registered, ApiError>> + Send;
    /// `PUT /data/connection/{key}`; the bulkId, if any.
    fn update_connection(
        &self,
        key: &str,
        body: &Value,
    ) -> impl Future<Output = Result<Option<String>, ApiError>> + Send;
    /// `PUT /data/settings/{key}`; the bulkId, if any.
    fn update_settings(
        &self,
        key: &str,
        body: &Value,
    ) -> impl Future<Output = Result<Option<String>, ApiError>> + Send;
    /// `PUT /integrations/{id}`.
    fn update_integration(&self, id: &str, body: &Value)
    -> impl Future<Output = Result<(), ApiError>> + Send;
    /// `DELETE /data/object/{key}`.
    fn delete_object(&self, key: &str) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// `GET /jobs?bulkId=`.
    fn jobs(&self, bulk_id: &str) -> impl Future<Output = Result<Vec<Job>, ApiError>> + Send;
    /// `GET /data/object/{path}` at any depth (the key first); `None` on 404.
    fn get_data_object(
        &self,
        path: &[String],
    ) -> impl Future<Output = Result<Option<LiveObject>, ApiError>> + Send;
    /// `PUT /data/settings/{path}` at any depth; the bulkId, if any.
    fn update_object_settings(
        &self,
        path: &[String],
        body: &Value,
    ) -> impl Future<Output = Result<Option<String>, ApiError>> + Send;
    /// `POST /data/object/search/{path}`: how many direct children the object has.
    fn count_object_children(
        &self,
        path: &[String],
    ) -> impl Future<Output = Result<Option<u64>, ApiError>> + Send;
}

impl Immuta for ImmutaClient {
    async fn list_connections(&self, expected: usize, in_flight: usize) -> Result<Vec<ObjectHit>, ApiError> {
        ImmutaClient::list_connections(self, expected, in_flight).await
    }
    async fn get_connection(&self, key: &str) -> Result<Option<LiveConnection>, ApiError> {
        ImmutaClient::get_connection(self, key).await
    }
    async fn get_object(&self, key: &str) -> Result<Option<LiveObject>, ApiError> {
        ImmutaClient::get_object(self, key).await
    }
    async fn get_integration(&self, id: &str) -> Result<Option<LiveIntegration>, ApiError> {
        ImmutaClient::get_integration(self, id).await
    }
    async fn count_children(&self, key: &str) -> Result<Option<u64>, ApiError> {
        ImmutaClient::count_children(self, key).await
    }
    async fn create_script(&self, body: &Value) -> Result<Script, ApiError> {
        ImmutaClient::create_script(self, body).await
    }
    async fn edit_script(&self, integration_id: &str, body: &Value) -> Result<Script, ApiError> {
        ImmutaClient::edit_script(self, integration_id, body).await
    }
    async fn delete_script(&self, integration_id: &str) -> Result<Script, ApiError> {
        ImmutaClient::delete_script(self, integration_id).await
    }
    async fn test_connection(&self, registration: &Value) -> Result<(), ApiError> {
        ImmutaClient::test_connection(self, registration).await
    }
    async fn register(&self, registration: &Value) -> Result<Registered, ApiError> {
        ImmutaClient::register(self, registration).await
    }
    async fn update_connection(&self, key: &str, body: &Value) -> Result<Option<String>, ApiError> {
        ImmutaClient::update_connection(self, key, body).await
    }
    async fn update_settings(&self, key: &str, body: &Value) -> Result<Option<String>, ApiError> {
        ImmutaClient::update_settings(self, key, body).await
    }
    async fn update_integration(&self, id: &str, body: &Value) -> Result<(), ApiError> {
        ImmutaClient::update_integration(self, id, body).await
    }
    async fn delete_object(&self, key: &str) -> Result<(), ApiError> {
        ImmutaClient::delete_object(self, key).await
    }
    async fn jobs(&self, bulk_id: &str) -> Result<Vec<Job>, ApiError> {
        ImmutaClient::jobs(self, bulk_id).await
    }
    async fn get_data_object(&self, path: &[String]) -> Result<Option<LiveObject>, ApiError> {
        ImmutaClient::get_data_object(self, path).await
    }
    async fn update_object_settings(
        &self,
        path: &[String],
        body: &Value,
    ) -> Result<Option<String>, ApiError> {
        ImmutaClient::update_object_settings(self, path, body).await
    }
    async fn count_object_children(&self, path: &[String]) -> Result<Option<u64>, ApiError> {
        ImmutaClient::count_object_children(self, path).await
    }
}
