//! axum-login 0.18: the user of its `AuthSession` identifies a request.

use std::{
    fmt,
    future::{Ready, ready},
    marker::PhantomData,
    sync::Arc,
};

use axum_login::{AuthSession, AuthUser, AuthnBackend};
use http::request::Parts;
use timeout_core::Subject;

use crate::{Identify, IdentifyError, Identity};

type Groups<U> = Arc<dyn Fn(&U) -> Vec<String> + Send + Sync>;
type Name<U> = Arc<dyn Fn(&U) -> String + Send + Sync>;

/// Identifies a request by axum-login's `AuthSession`: the session id and
/// the user (named by its id unless [`name`](AxumLogin::name) says
/// otherwise). Put the timeout layer inside the `AuthManagerLayer`. Pair it
/// with [`sessions::DeleteSessions`](crate::sessions::DeleteSessions) on the
/// same session store so a timeout logs the user out of axum-login too.
///
/// ```
/// # use axum_login::{AuthUser, AuthnBackend, UserId};
/// # #[derive(Debug, Clone)] struct User { id: u64, name: String, roles: Vec<String> }
/// # impl AuthUser for User {
/// #     type Id = u64;
/// #     fn id(&self) -> u64 { self.id }
/// #     fn session_auth_hash(&self) -> &[u8] { self.name.as_bytes() }
/// # }
/// # #[derive(Clone)] struct Backend;
/// # impl AuthnBackend for Backend {
/// #     type User = User; type Credentials = (); type Error = std::io::Error;
/// #     async fn authenticate(&self, _: ()) -> Result<Option<User>, std::io::Error> { Ok(None) }
/// #     async fn get_user(&self, _: &UserId<Self>) -> Result<Option<User>, std::io::Error> { Ok(None) }
/// # }
/// use timeout_tower::login::AxumLogin;
///
/// let identify = AxumLogin::<Backend>::new()
///     .name(|user| user.name.clone())
///     .groups(|user| user.roles.clone());
/// # let _ = identify;
/// ```
pub struct AxumLogin<B: AuthnBackend> {
    name: Name<B::User>,
    groups: Option<Groups<B::User>>,
    backend: PhantomData<fn() -> B>,
}

impl<B: AuthnBackend> AxumLogin<B> {
    /// Users named by their axum-login id, in no group.
    pub fn new() -> Self {
        AxumLogin {
            name: Arc::new(|user: &B::User| user.id().to_string()),
            groups: None,
            backend: PhantomData,
        }
    }

    /// How a user is named (exempt lists, audit records, scope `user` keys).
    pub fn name(mut self, name: impl Fn(&B::User) -> String + Send + Sync + 'static) -> Self {
        self.name = Arc::new(name);
        self
    }

    /// The timeout groups of a user.
    pub fn groups(
        mut self,
        groups: impl Fn(&B::User) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        self.groups = Some(Arc::new(groups));
        self
    }
}

impl<B: AuthnBackend> Default for AxumLogin<B> {
    fn default() -> Self {
        AxumLogin::new()
    }
}

impl<B: AuthnBackend> Clone for AxumLogin<B> {
    fn clone(&self) -> Self {
        AxumLogin {
            name: Arc::clone(&self.name),
            groups: self.groups.clone(),
            backend: PhantomData,
        }
    }
}

impl<B: AuthnBackend> fmt::Debug for AxumLogin<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AxumLogin")
    }
}

impl<B> Identify for AxumLogin<B>
where
    B: AuthnBackend + 'static,
{
    type Future = Ready<Result<Identity, IdentifyError>>;

    fn identify(&self, parts: &Parts) -> Self::Future {
        ready(self.identity(parts))
    }
}

impl<B: AuthnBackend + 'static> AxumLogin<B> {
    fn identity(&self, parts: &Parts) -> Result<Identity, IdentifyError> {
        let auth = parts.extensions.get::<AuthSession<B>>().ok_or_else(|| {
            IdentifyError::new(
                "no axum-login AuthSession in the request: add the AuthManagerLayer \
                 outside the timeout layer (`.layer(timeout.layer()).layer(auth_layer)`)",
            )
        })?;
        let session = auth.session.id();
        let (Some(user), Some(session)) = (&auth.user, session) else {
            return Ok(session.map_or(Identity::Anonymous, |id| {
                Identity::Session(id.to_string().into())
            }));
        };
        let mut subject = Subject::new(session.to_string(), (self.name)(user))?;
        if let Some(groups) = &self.groups {
            subject = subject.with_groups(groups(user));
        }
        Ok(Identity::Subject(subject))
    }
}
