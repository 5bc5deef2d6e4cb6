// Runs a TensorFlow.js graph model with TensorFlow.js itself (pure-JS CPU backend) on one
// input tensor, for check_tfjs_graph.py. Needs `npm install @tensorflow/tfjs@4` in a folder
// named by NODE_PATH. Usage: node check_tfjs_graph.js model.json input.bin H W out_prefix name...
const tf = require('@tensorflow/tfjs');
const fs = require('fs');
const path = require('path');

const [modelJson, inputBin, height, width, outPrefix, ...outputs] = process.argv.slice(2);
const handler = {
  load: async () => {
    const spec = JSON.parse(fs.readFileSync(modelJson));
    const group = spec.weightsManifest[0];
    const data = Buffer.concat(group.paths.map((p) => fs.readFileSync(path.join(path.dirname(modelJson), p))));
    return {
      modelTopology: spec.modelTopology,
      weightSpecs: group.weights,
      weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength),
      format: spec.format,
    };
  },
};

(async () => {
  const model = await tf.loadGraphModel(handler);
  const raw = fs.readFileSync(inputBin);
  const input = tf.tensor(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4),
    [1, Number(height), Number(width), 3]);
  const results = model.execute(input, outputs);
  for (const [index, tensor] of (Array.isArray(results) ? results : [results]).entries()) {
    fs.writeFileSync(`${outPrefix}${index}.bin`, Buffer.from((await tensor.data()).buffer));
    console.log(outputs[index], tensor.shape.join('x'));
  }
})();
