//! tower `Layer` + `Service` for axum/hyper apps (built by the timeout-tower issue).
