//! The partner gateway: authenticates partners and carriers, limits them, and forwards
//! their calls to dispatch and returns. It holds no business data.
