// One counter per key (the {key} path parameter). POST /count/KEY {"by": 2}
export default function (input, state = { count: 0 }, ctx) {
  const by = input.body && Number.isInteger(input.body.by) ? input.body.by : 1;
  const count = state.count + by;
  return { output: { status: 200, body: { count } }, state: { count } };
}
