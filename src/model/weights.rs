//! The model's conversion to and from a weight file ([`crate::format`]): parameter
//! tensors named by [`super::params::param_table`], the item-feature tensors
//! (`features.*`), the transition memory (`memory.*`) and the popularity prior
//! (`stats.popularity`). Reading checks every name, shape, element type and feature
//! index, since the file is untrusted input.
use std::borrow::Cow;
use std::collections::BTreeMap;

use super::memory::Memory;
use super::params::{param_table, CONTENT_TENSORS, ID_TENSOR};
use super::{Model, ModelConfig, ModelError};
use crate::features::ItemFeatureTable;
use crate::format::{
    Int8Tensor, ItemCatalog, Metadata, Quantization, Tensor, TensorData, WeightFile, FORMAT_VERSION,
};
use crate::kernels::HeadPlan;

/// Looks tensors up by name with typed errors: copying them out of the file, or moving
/// them (the serving loader's path, whose file drops them next: the catalogue-sized
/// item features and transition memory are then never held twice).
enum Lookup<'a> {
    /// Reads the file's tensors, leaving them there.
    Borrow(&'a BTreeMap<String, Tensor>),
    /// Takes each tensor it reads out of the map.
    Take(&'a mut BTreeMap<String, Tensor>),
}

impl<'a> Lookup<'a> {
    fn map(&self) -> &BTreeMap<String, Tensor> {
        match self {
            Lookup::Borrow(m) => m,
            Lookup::Take(m) => m,
        }
    }

    /// The tensor `name`: borrowed, or moved out of the map.
    fn get(&mut self, name: &str) -> Result<Cow<'a, Tensor>, ModelError> {
        let found = match self {
            Lookup::Borrow(m) => {
                let m: &'a BTreeMap<String, Tensor> = m;
                m.get(name).map(Cow::Borrowed)
            }
            Lookup::Take(m) => m.remove(name).map(Cow::Owned),
        };
        found.ok_or_else(|| ModelError::MissingTensor(name.to_string()))
    }

    /// The shape of tensor `name`, leaving it where it is.
    fn shape(&self, name: &str) -> Result<&[usize], ModelError> {
        self.map()
            .get(name)
            .map(|t| t.shape.as_slice())
            .ok_or_else(|| ModelError::MissingTensor(name.to_string()))
    }

    fn ints(&mut self, name: &str, len: Option<usize>) -> Result<Vec<u32>, ModelError> {
        let t = self.get(name)?;
        let TensorData::I32(v) = &t.data else {
            return Err(ModelError::WrongDtype(name.to_string()));
        };
        if let Some(len) = len {
            if t.shape != [len] {
                return Err(ModelError::ShapeMismatch {
                    name: name.into(),
                    expected: vec![len],
                    found: t.shape.clone(),
                });
            }
        }
        if let Some(&x) = v.iter().find(|&&x| x < 0) {
            return Err(ModelError::FeatureOutOfRange(format!(
                "{name} holds negative value {x}"
            )));
        }
        // Non-negative, so `as` is exact; an owned vector is converted in place.
        Ok(match t {
            Cow::Owned(Tensor {
                data: TensorData::I32(v),
                ..
            }) => v.into_iter().map(|x| x as u32).collect(),
            t => match &t.data {
                TensorData::I32(v) => v.iter().map(|&x| x as u32).collect(),
                _ => return Err(ModelError::WrongDtype(name.to_string())),
            },
        })
    }

    fn floats(&mut self, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
        let t = self.get(name)?;
        if !matches!(t.data, TensorData::F32(_)) {
            return Err(ModelError::WrongDtype(name.to_string()));
        }
        if t.shape != [len] {
            return Err(ModelError::ShapeMismatch {
                name: name.into(),
                expected: vec![len],
                found: t.shape.clone(),
            });
        }
        match t.into_owned().data {
            TensorData::F32(v) => Ok(v),
            _ => Err(ModelError::WrongDtype(name.to_string())),
        }
    }

    fn features(&mut self, n: usize) -> Result<ItemFeatureTable, ModelError> {
        Ok(ItemFeatureTable {
            category: self.ints("features.category", Some(n))?,
            price: self.floats("features.price", n)?,
            price_missing: self.floats("features.price_missing", n)?,
            token_offsets: self.ints("features.token_offsets", Some(n + 1))?,
            tokens: self.ints("features.tokens", None)?,
        })
    }

    /// The flat parameter vector, tensor by tensor in table order; without `item.id`
    /// when `skip_ids` (see [`Model::id_rows`]).
    fn params(&mut self, config: &ModelConfig, skip_ids: bool) -> Result<Vec<f32>, ModelError> {
        let mut flat = Vec::new();
        let id_name = ID_TENSOR.to_string();
        for spec in param_table(config) {
            if skip_ids && spec.name == id_name {
                continue;
            }
            let t = self.get(&spec.name)?;
            if t.shape != spec.shape {
                return Err(ModelError::ShapeMismatch {
                    name: spec.name,
                    expected: spec.shape,
                    found: t.shape.clone(),
                });
            }
            let TensorData::F32(v) = &t.data else {
                return Err(ModelError::WrongDtype(spec.name));
            };
            if v.len() != spec.len() {
                return Err(ModelError::ShapeMismatch {
                    name: spec.name,
                    expected: spec.shape,
                    found: vec![v.len()],
                });
            }
            flat.extend_from_slice(v);
        }
        if skip_ids {
            // Small without the ID rows: drop the growth slack (a full vector is
            // shrunk by `Model::drop_id_rows` instead, without a second full copy).
            flat.shrink_to_fit();
        }
        Ok(flat)
    }

    fn memory(&mut self, n: usize) -> Result<Option<Memory>, ModelError> {
        if !self.map().contains_key("memory.offsets") {
            return Ok(None);
        }
        let blend = self.floats("memory.blend", 3)?;
        let nnz = self.shape("memory.items")?.first().copied().unwrap_or(0);
        let m = Memory {
            offsets: self.ints("memory.offsets", Some(n + 1))?,
            items: self.ints("memory.items", Some(nnz))?,
            weights: self.floats("memory.weights", nnz)?,
            alpha: blend[0],
            last_l: if blend[1].is_finite() && blend[1] >= 0.0 {
                blend[1].min(1000.0) as usize
            } else {
                0
            },
            decay: blend[2],
        };
        m.validate(n).map_err(ModelError::BadMemory)?;
        Ok(Some(m))
    }
}

fn int_tensor(v: &[u32]) -> Tensor {
    Tensor {
        shape: vec![v.len()],
        data: TensorData::I32(v.iter().map(|&x| x as i32).collect()),
    }
}

fn float_tensor(v: Vec<f32>) -> Tensor {
    Tensor {
        shape: vec![v.len()],
        data: TensorData::F32(v),
    }
}

impl Model {
    /// Builds the model from a validated weight file. When the metadata records the
    /// trained event kinds, each untrained kind's `user.kind` row becomes a copy of the
    /// closest trained kind's ([`super::kinds`]); without the record the rows are used as
    /// stored.
    pub fn from_weights(file: &WeightFile) -> Result<Model, ModelError> {
        Model::build(&file.metadata, Lookup::Borrow(&file.tensors), false)
    }

    /// The serving form of an int8 weight file read with its `item.id` table kept
    /// quantised (`ids`, from [`crate::format::WeightFile::from_source`]): the model
    /// without ID rows ([`Model::id_rows`]) and its scoring plan with int8 item vectors
    /// built row by row from `ids` — the same model and plan as
    /// [`Model::from_weights`] then [`Model::runtime_plan`] on the dequantised file,
    /// without any `[n_items × dim]` f32 buffer.
    ///
    /// The model's tensors (parameters, item features, transition memory) are moved
    /// out of `file`, not copied: the serving loader drops them next.
    pub fn from_weights_int8(
        file: &mut WeightFile,
        ids: Int8Tensor,
    ) -> Result<(Model, HeadPlan), ModelError> {
        let mut model = Model::build(&file.metadata, Lookup::Take(&mut file.tensors), true)?;
        let (n, d) = (model.config.n_items, model.config.dim);
        if ids.shape != [n, d] || ids.q.len() != n * d || ids.scale.len() != n {
            return Err(ModelError::ShapeMismatch {
                name: ID_TENSOR.to_string(),
                expected: vec![n, d],
                found: ids.shape,
            });
        }
        model.storage = Quantization::Int8;
        let shape = ids.shape.clone();
        let Some(vectors) = model.item_vectors_int8_from(ids) else {
            return Err(ModelError::ShapeMismatch {
                name: ID_TENSOR.to_string(),
                expected: vec![n, d],
                found: shape,
            });
        };
        let plan = model.head_plan(vectors);
        model.drop_id_rows();
        Ok((model, plan))
    }

    /// [`Model::from_weights`], with the `item.id` rows left out of the parameters (and
    /// not looked up in the file) when `skip_ids`.
    fn build(
        metadata: &Metadata,
        mut look: Lookup<'_>,
        skip_ids: bool,
    ) -> Result<Model, ModelError> {
        let config = metadata.model.clone();
        config.validate()?;
        let n = config.n_items;
        let features = look.features(n)?;
        check_features(&config, &features)?;
        let params = look.params(&config, skip_ids)?;
        let memory = look.memory(n)?;
        let mut model = Model {
            config,
            features,
            params,
            memory,
            trained_kinds: None,
            storage: metadata.quantization,
            id_rows: !skip_ids,
            id_mix: None,
        };
        if let Some(kinds) = &metadata.trained_kinds {
            model.set_trained_kinds(kinds);
        }
        Ok(model)
    }

    /// The parameters and item-feature tensors, named as in the weight file.
    ///
    /// # Panics
    /// If the ID rows were dropped ([`Model::id_rows`]).
    pub fn tensors(&self) -> BTreeMap<String, Tensor> {
        assert!(self.id_rows, "the model's item.id rows were dropped");
        let mut m = BTreeMap::new();
        for spec in param_table(&self.config) {
            let data = TensorData::F32(self.params[spec.range()].to_vec());
            m.insert(
                spec.name,
                Tensor {
                    shape: spec.shape,
                    data,
                },
            );
        }
        let f = &self.features;
        m.insert("features.category".into(), int_tensor(&f.category));
        m.insert("features.price".into(), float_tensor(f.price.clone()));
        m.insert(
            "features.price_missing".into(),
            float_tensor(f.price_missing.clone()),
        );
        m.insert(
            "features.token_offsets".into(),
            int_tensor(&f.token_offsets),
        );
        m.insert("features.tokens".into(), int_tensor(&f.tokens));
        if let Some(mem) = &self.memory {
            m.insert("memory.offsets".into(), int_tensor(&mem.offsets));
            m.insert("memory.items".into(), int_tensor(&mem.items));
            m.insert("memory.weights".into(), float_tensor(mem.weights.clone()));
            m.insert(
                "memory.blend".into(),
                float_tensor(vec![mem.alpha, mem.last_l as f32, mem.decay]),
            );
        }
        m
    }

    /// A complete weight file for this model: its tensors, the catalog, category names,
    /// a popularity prior (`stats.popularity`, one value per item), free-form
    /// feature/training/metrics JSON and the trained event kinds (when recorded).
    pub fn to_weight_file(
        &self,
        items: ItemCatalog,
        categories: Vec<String>,
        popularity: Vec<f32>,
        features: serde_json::Value,
        training: serde_json::Value,
        metrics: serde_json::Value,
    ) -> WeightFile {
        let mut tensors = self.tensors();
        tensors.insert("stats.popularity".into(), float_tensor(popularity));
        WeightFile {
            metadata: Metadata {
                format_version: FORMAT_VERSION,
                model: self.config.clone(),
                categories,
                items,
                features,
                training,
                metrics,
                quantization: Quantization::F32,
                content_hash: String::new(),
                data_crc32: None,
                trained_kinds: self.trained_kinds.clone(),
            },
            tensors,
        }
    }
}

/// Checks an item-feature table against the config: one entry per item, categories and
/// token buckets in range, a valid CSR token index, finite prices.
pub(super) fn check_features(config: &ModelConfig, f: &ItemFeatureTable) -> Result<(), ModelError> {
    let n = config.n_items;
    let bad = |m: String| Err(ModelError::FeatureOutOfRange(m));
    if f.category.len() != n
        || f.price.len() != n
        || f.price_missing.len() != n
        || f.token_offsets.len() != n + 1
    {
        return bad(format!(
            "feature table covers {} items, the config has {n}",
            f.category.len()
        ));
    }
    if let Some((i, c)) = f
        .category
        .iter()
        .enumerate()
        .find(|(_, &c)| c as usize >= config.n_categories)
    {
        return bad(format!(
            "item {i} has category {c}, only {} categories",
            config.n_categories
        ));
    }
    if f.token_offsets[0] != 0
        || f.token_offsets.windows(2).any(|w| w[0] > w[1])
        || f.token_offsets[n] as usize != f.tokens.len()
    {
        return bad("token offsets are not a valid CSR index".into());
    }
    if let Some(t) = f
        .tokens
        .iter()
        .find(|&&t| t as usize >= config.n_token_buckets)
    {
        return bad(format!(
            "token bucket {t} outside {} buckets",
            config.n_token_buckets
        ));
    }
    if f.price
        .iter()
        .chain(&f.price_missing)
        .any(|p| !p.is_finite())
    {
        return bad("non-finite price feature".into());
    }
    Ok(())
}

impl Model {
    /// Folds the item content into `file`'s `item.id` rows (float tensors, as
    /// [`WeightFile::from_bytes`] or a trainer gives them): row `i` becomes the item's
    /// whole vector `v_i` ([`Model::item_vectors`]: the ID row, then the category, title
    /// token and price parts added in that order), and the content tables
    /// ([`CONTENT_TENSORS`]) become zeros. Every reader then computes the same item
    /// vectors, bit for bit in f32 (it adds zeros to `v_i`). What changes is a quantised
    /// file: an int8 file stores one rounding of `v_i` (instead of one of the ID row and,
    /// at load, another of the sum), and the int8 loader keeps its rows as stored
    /// (`Model::item_vectors_int8_from`: about 0.2 s less at 1,000,000 items in the
    /// browser). `vitrine train`, `quantize` and `synth` fold before writing int8.
    pub fn fold_item_content(file: &mut WeightFile) -> Result<(), ModelError> {
        let mut vectors = Some(Model::from_weights(file)?.item_vectors());
        // `from_weights` checked every name, shape and dtype: `item.id` is `[n_items ×
        // dim]`, like the vectors, and the content tables are f32.
        for name in [ID_TENSOR].into_iter().chain(CONTENT_TENSORS) {
            let name = name.to_string();
            let t = (file.tensors.get_mut(&name))
                .ok_or_else(|| ModelError::MissingTensor(name.to_string()))?;
            let TensorData::F32(v) = &mut t.data else {
                return Err(ModelError::WrongDtype(name.to_string()));
            };
            *v = match vectors.take() {
                Some(vectors) => vectors,
                None => vec![0.0; v.len()],
            };
        }
        Ok(())
    }
}
