// InfluxDB's answer as the client gets it: [{time, temperature, humidity, average}].
export default function (input) {
  const series = input.series[0];
  if (!series) return { outputs: [{ status: 404, body: { error: `no readings of ${input.input.device} in the last hour` } }] };
  const readings = series.values.map((row) => Object.fromEntries(series.columns.map((c, i) => [c, row[i]])));
  return { outputs: [{ status: 200, body: { device: input.input.device, readings } }] };
}
