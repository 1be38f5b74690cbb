//! The suite's gRPC contracts: generated prost messages and tonic stubs, one module per
//! protobuf package, plus the descriptor set that servers hand to gRPC reflection.
//! Generated code only; conversions to domain types live in each service's `api` layer.

/// Encoded `FileDescriptorSet` of every aftersales proto, for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/aftersales_descriptor.bin"));

pub mod common {
    pub mod v1 {
        tonic::include_proto!("aftersales.common.v1");
    }
}

pub mod tickets {
    pub mod v1 {
        tonic::include_proto!("aftersales.tickets.v1");
    }
}

pub mod events {
    pub mod v1 {
        tonic::include_proto!("aftersales.events.v1");
    }
}
