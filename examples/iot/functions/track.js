// Keeps each device's last ten temperatures and how many readings it sent;
// outputs the reading with the rolling average.
const WINDOW = 10;

export default function (input, state = { count: 0, window: [] }) {
  const r = input.payload;
  const window = [...state.window, r.temperature].slice(-WINDOW);
  const average = Math.round((window.reduce((a, b) => a + b, 0) / window.length) * 100) / 100;
  return {
    state: { count: state.count + 1, window },
    outputs: [{ deviceId: r.deviceId, seq: r.seq, temperature: r.temperature, humidity: r.humidity ?? null, average }],
  };
}
