//! Completes the OpenAPI document with the refusals every operation can
//! answer, in one place rather than on each annotation: they follow from
//! what the operation takes (a login, path parameters, a query, a body)
//! and from the shared extractors (see `http::extract`).

use utoipa::openapi::{
    path::{Operation, ParameterIn},
    ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder,
};

/// Adds the error responses an operation can answer but does not list.
pub fn document_refusals(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        // Logging in is where failed attempts lock an account or a client out.
        if let Some(op) = item.post.as_mut().filter(|_| path == "/api/v1/session") {
            for (status, why) in
                [(423, "The account is locked after failed logins"), (429, "Too many failed logins from this address")]
            {
                op.responses.responses.entry(status.to_string()).or_insert_with(|| error_response(why));
            }
        }
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ];
        // Everything under a tracking code counts against the address's lookup
        // limit (`auth::guard`).
        let tracking = path.starts_with("/api/v1/portal/orders/{");
        for op in ops.into_iter().flatten() {
            let mut statuses = refusals(op);
            if tracking {
                statuses.push((429, "Too many tracking-code lookups from this address"));
            }
            for (status, why) in statuses {
                op.responses.responses.entry(status.to_string()).or_insert_with(|| error_response(why));
            }
        }
    }
}

/// The statuses an operation can be refused with, and why.
fn refusals(op: &Operation) -> Vec<(u16, &'static str)> {
    let params = op.parameters.as_deref().unwrap_or_default();
    let mut out = vec![];
    if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
        out.push((401, "Not logged in, or the session or token has ended"));
        out.push((403, "Lacking the permission, or a password change is due first"));
    }
    if params.iter().any(|p| matches!(p.parameter_in, ParameterIn::Path)) {
        out.push((404, "Not found or out of your scope (also an id that cannot be one)"));
    }
    if params.iter().any(|p| matches!(p.parameter_in, ParameterIn::Query)) {
        out.push((422, "A query parameter of the wrong type or value (`field` names it)"));
    }
    if op.request_body.is_some() {
        out.push((400, "A body that does not parse"));
        out.push((413, "A body over the size limit"));
        out.push((415, "A body of another content type"));
        out.push((422, "A field missing, of the wrong type or invalid (`field` names it)"));
    }
    out
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    ResponseBuilder::new().description(description).content("application/json", content).build().into()
}
