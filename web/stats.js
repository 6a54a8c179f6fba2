'use strict';
// stats.js — "Statistics" (staff): the figures, kept fresh from the stream,
// and a chart of users online over time from the history endpoint, drawn
// as SVG here (no library). The bucket follows the range.

const BUCKETS = { '1h': '1m', '24h': '5m', '7d': '1h', '30d': '1h' };
const RANGE_NAMES = { '1h': 'the last hour', '24h': 'the last 24 hours', '7d': 'the last 7 days', '30d': 'the last 30 days' };
const BUCKET_NAMES = { '1m': 'minute', '5m': '5 minutes', '1h': 'hour', '1d': 'day' };

Views.stats = function (main, params) {
  const { root, refs } = clone('t-stats');
  main.replaceChildren(root);
  let range = params.get('range') in BUCKETS ? params.get('range') : '24h';
  let points = null;
  const ctl = new AbortController();

  async function loadFigures() {
    try {
      const s = await usersd.getStatistics({ signal: ctl.signal });
      const fig = (label, v) => h('div', {}, h('dt', {}, label), h('dd', {}, v));
      refs.figures.replaceChildren(h('dl', { class: 'figures' },
        fig('Total users', fmtNumber(s.total_users)), fig('Active', fmtNumber(s.active_users)),
        fig('Inactive', fmtNumber(s.inactive_users)), fig('Staff', fmtNumber(s.staff_users)),
        fig('Online', fmtNumber(s.online_users)), fig('Away', fmtNumber(s.away_users)),
        fig('Offline', fmtNumber(s.offline_users)), fig('Online ratio', s.online_ratio.toFixed(2) + ' %')));
    } catch (e) {
      unavailable(refs.figures, e, 'Statistics');
    }
  }

  async function loadChart() {
    const to = Date.now();
    const from = to - RANGES[range] * 1000;
    refs.chartNote.textContent = `Every ${BUCKET_NAMES[BUCKETS[range]]}, ${RANGE_NAMES[range]}: users online at the start of each (line) and the most online within it (shaded).`;
    try {
      const data = await usersd.getStatisticsHistory({ from: new Date(from), to: new Date(to), bucket: BUCKETS[range], signal: ctl.signal });
      points = data.points;
      draw();
    } catch (e) {
      points = null;
      unavailable(refs.chart, e, 'The history of users online');
    }
  }

  function draw() {
    if (points) drawChart(refs.chart, points, range);
  }

  for (const b of refs.ranges.querySelectorAll('button')) {
    b.setAttribute('aria-pressed', String(b.value === range));
    b.addEventListener('click', () => {
      range = b.value;
      for (const o of refs.ranges.querySelectorAll('button')) o.setAttribute('aria-pressed', String(o === b));
      history.replaceState(null, '', '#/stats?range=' + range);
      loadChart();
    });
  }

  // Redraw at the new width (text in the chart keeps its size).
  const resize = new ResizeObserver(throttle(draw, 150));
  resize.observe(refs.chart);
  const refresh = throttle(loadFigures, 2000);
  const off = Live.on((type) => { if (type !== 'status_message') refresh(); });
  loadFigures();
  loadChart();
  return () => { off(); refresh.cancel(); resize.disconnect(); ctl.abort(); };
};

// Rounds up to 1, 2 or 5 times a power of ten, for the axis.
function niceMax(v) {
  if (v <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function tickLabel(ms, range) {
  const d = new Date(ms);
  if (range === '1h' || range === '24h') return d.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' });
  return d.toLocaleDateString('en-GB', { day: 'numeric', month: 'short' });
}

function drawChart(box, points, range) {
  const W = Math.max(280, box.clientWidth);
  const H = 220;
  const m = { l: 44, r: 12, t: 12, b: 28 };
  const iw = W - m.l - m.r;
  const ih = H - m.t - m.b;
  const known = points.filter((p) => p.online != null);
  const top = niceMax(Math.max(0, ...known.map((p) => Math.max(p.online, p.online_max ?? p.online))));
  const n = points.length;
  const x = (i) => m.l + (n > 1 ? (i / (n - 1)) * iw : iw / 2);
  const y = (v) => m.t + ih - (v / top) * ih;

  // Lines break where history has no data (null counts).
  let line = '';
  let area = '';
  let run = [];
  const dots = []; // a point with no neighbour draws no line: a dot instead
  const flush = () => {
    if (!run.length) return;
    if (run.length === 1) dots.push(svg('circle', { class: 'dot', cx: x(run[0]).toFixed(1), cy: y(points[run[0]].online).toFixed(1), r: 3 }));
    line += run.map((i, k) => `${k ? 'L' : 'M'}${x(i).toFixed(1)},${y(points[i].online).toFixed(1)}`).join('');
    area += `M${x(run[0]).toFixed(1)},${y(0)}` + run.map((i) => `L${x(i).toFixed(1)},${y(points[i].online_max ?? points[i].online).toFixed(1)}`).join('') + `L${x(run[run.length - 1]).toFixed(1)},${y(0)}Z`;
    run = [];
  };
  points.forEach((p, i) => { if (p.online == null) flush(); else run.push(i); });
  flush();

  const grid = [0, top / 2, top].map((v) => svg('g', { class: 'tick' },
    svg('line', { x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }),
    svg('text', { x: m.l - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmtNumber(v))));
  const ticks = [];
  const nt = Math.min(n, Math.max(2, Math.floor(iw / 90)));
  for (let k = 0; k < nt && n; k++) {
    const i = Math.round((k / Math.max(1, nt - 1)) * (n - 1));
    ticks.push(svg('text', { x: x(i), y: H - 8, 'text-anchor': k === 0 ? 'start' : k === nt - 1 ? 'end' : 'middle' }, tickLabel(Date.parse(points[i].at), range)));
  }
  // Hover targets, one per bucket, naming its figures.
  const bw = n ? iw / n : iw;
  const hovers = points.map((p, i) => svg('rect', { class: 'hit', x: (x(i) - bw / 2).toFixed(1), y: m.t, width: bw.toFixed(1), height: ih },
    svg('title', {}, p.online == null ? `${exactTime(p.at)}: no data` : `${exactTime(p.at)}: ${p.online} online (at most ${p.online_max})`)));

  let summary = 'No history in this range yet.';
  if (known.length) {
    const peak = known.reduce((a, b) => ((b.online_max ?? b.online) > (a.online_max ?? a.online) ? b : a));
    const last = known[known.length - 1];
    summary = `Most online: ${fmtNumber(peak.online_max ?? peak.online)} (${exactTime(peak.at)}). Latest: ${fmtNumber(last.online)} online (${exactTime(last.at)}).`;
    if (points[0].online == null) summary += ` No history before ${exactTime(known[0].at)}.`;
  }
  box.replaceChildren(
    h('figure', { class: 'chart' },
      svg('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Users online over time', 'aria-describedby': 'chart-summary' },
        grid, svg('path', { class: 'area', d: area }), svg('path', { class: 'line', d: line }), dots,
        svg('g', { class: 'xaxis' }, ticks), hovers),
      h('figcaption', {}, 'Users online over time')),
    h('p', { id: 'chart-summary' }, summary),
    dataTable(points));
}

// The same numbers as a table, for whoever cannot see the chart.
function dataTable(points) {
  const d = h('details', {}, h('summary', {}, 'The numbers'));
  d.addEventListener('toggle', () => {
    if (!d.open || d.querySelector('table')) return;
    d.append(h('table', { class: 'list' }, h('caption', { class: 'vh' }, 'Users online over time, as numbers'),
      h('thead', {}, h('tr', {}, ['Time', 'Online', 'Most online', 'Away', 'Offline'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, points.map((p) => h('tr', {}, h('td', {}, exactTime(p.at)),
        [p.online, p.online_max, p.away, p.offline].map((v) => h('td', { class: 'num' }, v == null ? '–' : fmtNumber(v))))))));
  }, { once: false });
  return d;
}
