export default function (input) {
  return { outputs: [{ device: input.params.key }] };
}
