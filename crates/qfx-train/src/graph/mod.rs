//! Networks as layer graphs: the description a user writes ([`GraphSpec`]: named layers, each
//! with an operation and its inputs), its resolution (shapes inferred and checked up front,
//! [`ResolvedGraph`]), the trainable model built from it ([`GraphModel`]), and the built-in
//! networks written in the same description ([`presets`]). Training, export, the integer
//! engine and the HLS back end all see one code path, whatever the network.

mod model;
pub mod presets;
mod spec;

pub use model::{GraphModel, Layer, OptionA, Stateless};
pub(crate) use spec::table_domain;
pub use spec::{
    ConvPlan, GraphSpec, LayerSpec, OpSpec, PadRule, PadSpec, ResolvedGraph, ResolvedNode,
    GRAPH_INPUT,
};
