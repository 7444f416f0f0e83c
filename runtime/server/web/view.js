"use strict";
// Draws a service's view (see "Views" in the README): headings, text,
// figures, tables and charts, built node by node from the checked JSON.
// Nothing of it is parsed as HTML and no app code runs in the page: every
// string becomes a text node, every chart an SVG drawn here.

const SVG_NS = "http://www.w3.org/2000/svg";
// Colours of the series, in order (style.css: .series-0 … .series-11):
// as many as a chart may have series (the host allows 12), none repeated.
const SERIES_CLASSES = 12;
let chartCount = 0;
// The widest a character of a tick label is drawn (11 px sans-serif).
const TICK_CHAR_WIDTH = 7;

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function figure(value) {
  return Number(value).toLocaleString("en", { maximumFractionDigits: 2 });
}

function withUnit(value, unit) {
  return unit ? `${figure(value)} ${unit}` : figure(value);
}

// The nodes of a view, or an exception when it is not a view domicile
// draws (the host refuses those; this is the page's own guard).
function renderView(view) {
  if (!Array.isArray(view)) throw new Error("the view is not a list of blocks");
  return view.map((block) => {
    const kinds = Object.keys(block || {});
    if (kinds.length !== 1) throw new Error("a block has not exactly one kind");
    const [kind] = kinds;
    const body = block[kind];
    switch (kind) {
      case "heading": return h("h4", { class: "view-heading" }, String(body));
      case "text": return h("p", { class: "view-text" }, String(body));
      case "number": return numberBlock(body);
      case "table": return tableBlock(body);
      case "chart": return chartBlock(body);
      default: throw new Error(`unknown block "${kind}"`);
    }
  });
}

function numberBlock(n) {
  const parts = [h("span", { class: "view-label" }, n.label), " ", h("strong", {}, withUnit(n.value, n.unit))];
  if (typeof n.delta === "number") {
    const sign = n.delta > 0 ? "+" : "";
    parts.push(" ", h("span", { class: n.delta > 0 ? "view-up" : "view-down" },
      `${sign}${figure(n.delta)} %${n.versus ? " on " + n.versus : ""}`));
  }
  return h("p", { class: "view-number" }, parts);
}

function tableBlock(t) {
  const numeric = t.columns.map((_, c) => t.rows.some((r) => typeof r[c] === "number"));
  const cell = (tag, value, c) => h(tag, numeric[c] ? { class: "num" } : {},
    value === null || value === undefined ? "" : typeof value === "number" ? figure(value) : String(value));
  return h("table", { class: "view-table" },
    t.title ? h("caption", {}, t.title) : null,
    h("thead", {}, h("tr", {}, t.columns.map((name, c) => cell("th", name, c)))),
    h("tbody", {}, t.rows.map((row) => h("tr", {}, row.map((v, c) => cell("td", v, c))))));
}

// The y axis of values from `min` to `max`: round steps (1, 2, 2.5 or 5
// times a power of ten) from a round value at or below `min` to one at or
// above `max`, about five of them.
function niceAxis(min, max) {
  const span = max - min || Math.abs(max) || 1;
  const rough = span / 5;
  const power = Math.pow(10, Math.floor(Math.log10(rough)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= rough * 0.999);
  // Values are whole multiples of the step: no 0.30000000000000004.
  const decimals = Math.max(0, -Math.floor(Math.log10(step)) + (step / power === 2.5 ? 1 : 0));
  const round = (v) => Number(v.toFixed(decimals));
  const from = round(Math.floor(min / step + 1e-9) * step);
  // All values alike (or none): an axis of some height all the same.
  const to = Math.max(round(Math.ceil(max / step - 1e-9) * step), round(from + step));
  const ticks = [];
  for (let v = from; v <= to + step / 2; v = round(v + step)) ticks.push(v);
  return { min: from, max: to, ticks };
}

// A chart: an SVG image with its title and a description for screen
// readers, a legend, and the same figures as a table below it.
function chartBlock(chart) {
  const id = `view-chart-${++chartCount}`;
  const unit = chart.unit ? ` (${chart.unit})` : "";
  // The unit is written above the axis, clear of its top value.
  const W = 640, H = 270, left = 64, right = 8, top = 24, bottom = 44;
  const plotW = W - left - right, plotH = H - top - bottom;
  const n = chart.x.length;
  const stacked = chart.kind === "stacked-bar";
  const at = (s, i) => chart.series[s].values[i];
  let max = 0, min = 0;
  for (let i = 0; i < n; i++) {
    if (stacked) max = Math.max(max, chart.series.reduce((sum, _, s) => sum + (at(s, i) || 0), 0));
    else chart.series.forEach((_, s) => { const v = at(s, i); if (typeof v === "number") { max = Math.max(max, v); min = Math.min(min, v); } });
  }
  const axis = niceAxis(min, max);
  [min, max] = [axis.min, axis.max];
  const y = (v) => top + ((max - v) / (max - min)) * plotH;
  const band = plotW / n;
  const kindText = { "bar": "Bar chart", "stacked-bar": "Stacked bar chart", "line": "Line chart" }[chart.kind];
  const image = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart", "aria-labelledby": `${id}-title ${id}-desc` },
    svg("title", { id: `${id}-title` }, chart.title + unit),
    svg("desc", { id: `${id}-desc` }, `${kindText} of ${chart.series.map((s) => s.name).join(", ")}, ` +
      `${n} values from ${chart.x[0]} to ${chart.x[n - 1]}; the figures are in the table below.`));

  // The y axis: a grid line at each round value.
  for (const v of axis.ticks) {
    image.append(svg("line", { class: "grid", x1: left, x2: W - right, y1: y(v), y2: y(v) }),
      svg("text", { class: "tick", x: left - 6, y: y(v) + 4, "text-anchor": "end" }, figure(v)));
  }
  if (chart.unit) image.append(svg("text", { class: "tick unit", x: left - 6, y: top - 10, "text-anchor": "end" }, chart.unit));
  // The x axis: every label if they fit side by side, else one in so many
  // (the widest label and a gap each), so that they never run into each other.
  const labelWidth = Math.max(...chart.x.map((l) => String(l).length)) * TICK_CHAR_WIDTH + 10;
  const every = Math.max(1, Math.ceil(labelWidth / band));
  chart.x.forEach((label, i) => {
    const x = left + band * (i + 0.5), half = (String(label).length * TICK_CHAR_WIDTH) / 2;
    // Nor past the image's edge, where it would be cut.
    if (i % every === 0 && x - half >= 0 && x + half <= W) {
      image.append(svg("text", { class: "tick", x, y: H - bottom + 16, "text-anchor": "middle" }, label));
    }
  });
  image.append(svg("line", { class: "axis", x1: left, x2: W - right, y1: y(0), y2: y(0) }));

  const tip = (i, s, v) => `${chart.x[i]}${chart.series.length > 1 ? ", " + chart.series[s].name : ""}: ${withUnit(v, chart.unit)}`;
  if (chart.kind === "line") {
    chart.series.forEach((series, s) => {
      let points = [];
      const flush = () => {
        if (points.length > 1) image.append(svg("polyline", { class: `line series-${s % SERIES_CLASSES}`, points: points.join(" ") }));
        points = [];
      };
      series.values.forEach((v, i) => {
        if (typeof v !== "number") { flush(); return; }
        const cx = left + band * (i + 0.5);
        points.push(`${cx},${y(v)}`);
        image.append(svg("circle", { class: `point series-${s % SERIES_CLASSES}`, cx, cy: y(v), r: 2.5 }, svg("title", {}, tip(i, s, v))));
      });
      flush();
    });
  } else {
    const gap = band * 0.15;
    for (let i = 0; i < n; i++) {
      let base = 0;
      chart.series.forEach((series, s) => {
        const v = series.values[i];
        if (typeof v !== "number") return;
        let x0, width, from, to;
        if (stacked) {
          x0 = left + band * i + gap; width = band - 2 * gap; from = base; to = base + v; base = to;
        } else {
          width = (band - 2 * gap) / chart.series.length; x0 = left + band * i + gap + width * s;
          from = Math.min(0, v); to = Math.max(0, v);
        }
        image.append(svg("rect", { class: `bar series-${s % SERIES_CLASSES}`, x: x0, width: Math.max(width, 0.5),
          y: y(to), height: Math.max(y(from) - y(to), 0) }, svg("title", {}, tip(i, s, v))));
      });
    }
  }

  const legend = chart.series.length > 1
    ? h("ul", { class: "view-legend" }, chart.series.map((series, s) =>
      h("li", {}, svgSwatch(s), " ", series.name)))
    : null;
  const figures = h("details", { class: "view-figures" }, h("summary", {}, `${chart.title}: the figures`),
    tableBlock({ columns: [""].concat(chart.series.map((s) => s.name + unit)),
      rows: chart.x.map((label, i) => [label].concat(chart.series.map((s) => s.values[i]))) }));
  return h("figure", { class: "view-chart" }, h("figcaption", {}, chart.title + unit), image, legend, figures);
}

function svgSwatch(s) {
  return svg("svg", { class: "swatch", viewBox: "0 0 10 10", "aria-hidden": "true" },
    svg("rect", { class: `series-${s % SERIES_CLASSES}`, width: 10, height: 10 }));
}

// A service's output: its view when it has one (the JSON behind it a click
// away), else the JSON.
function serviceOutput(output) {
  const raw = h("pre", { class: "output" }, JSON.stringify(output, null, 2));
  if (!output || typeof output !== "object" || !("view" in output)) return [raw];
  try {
    return [h("div", { class: "view" }, renderView(output.view)),
      h("details", { class: "view-json" }, h("summary", {}, "All of the output (JSON)"), raw)];
  } catch (e) {
    return [h("p", { class: "denied" }, `This result's view cannot be drawn (${e.message}); here is the output as it came.`), raw];
  }
}
