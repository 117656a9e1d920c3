// One alert when a device's average goes above 30 °C, one when it is back
// under: the state remembers which side it is on.
const THRESHOLD = 30;

export default function (input, state = { hot: false, alerts: 0 }) {
  const hot = input.average > THRESHOLD;
  if (hot === state.hot) return { state };
  const text = hot
    ? `${input.deviceId}: average ${input.average} °C is above ${THRESHOLD} °C`
    : `${input.deviceId}: average ${input.average} °C is back under ${THRESHOLD} °C`;
  return {
    state: { hot, alerts: state.alerts + 1 },
    outputs: [{ text, device: input.deviceId, hot, average: input.average, seq: input.seq }],
  };
}
