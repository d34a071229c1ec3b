# ruff: noqa: E501  (Typst source: long layout lines read better unbroken)
"""The Typst template of the PDF report (kept in Python so it ships with the package).

It reads ``data.json`` (written by ``pdf``): every table cell already formatted, charts
as numbers, drawn with Typst's own shapes (vector, labels in the report's font).
"""

TEMPLATE = r"""
#let d = json("data.json")
#set document(title: d.title, keywords: d.keywords, date: none)
#set page(paper: "a4", margin: (x: 1.6cm, y: 1.8cm),
  footer: context [#set text(size: 7.5pt, fill: luma(90)); #d.title #h(1fr) #counter(page).display("1 / 1", both: true)])
#set text(font: d.fonts, lang: d.lang, size: 9pt)
#set par(justify: false, leading: 0.6em)
#show heading.where(level: 1): it => block(above: 1.2em, below: 0.7em, text(size: 13pt, weight: "bold", it.body))

#let blue = rgb("#2f5d9b")
#let red = rgb("#c0392b")
#let grey = luma(200)

#let fmt(v) = {
  if v >= 1000000 { str(calc.round(v / 1000000, digits: 1)) + "M" }
  else if v >= 1000 { str(calc.round(v / 1000, digits: 1)) + "k" }
  else { str(calc.round(v, digits: 1)) }
}

// One table: alignment per column and one bottom rule per cell as plain values, the
// header and total cells styled once each; no per-cell closures (they made the
// 300-row ranking cost ~1 s of typesetting, now ~0.6 s).
#let tbl(t) = {
  set text(size: t.size * 1pt)
  table(
    columns: t.widths.map(w => if w == 0 { auto } else { w * 1fr }),
    align: t.right.map(r => if r { right + horizon } else { left + horizon }),
    stroke: (bottom: 0.3pt + grey),
    inset: (x: 3pt, y: 2.6pt),
    table.header(..t.header.map(h => table.cell(fill: luma(235), text(weight: "bold", size: 7.5pt, h)))),
    table.hline(y: 1, stroke: 0.8pt),
    ..t.rows.flatten(),
    ..if t.total != none { (table.hline(stroke: 0.6pt),) + t.total.map(c => table.cell(fill: luma(245), c)) } else { () },
  )
}

#let bars(c) = {
  let w = 17cm
  let ht = 4.6cm
  let n = c.values.len()
  let top = calc.max(..c.values, ..c.reference, 0.000001) * 1.08
  let ox = 1.2cm
  let bw = (w - ox) / n
  block(breakable: false, {
    text(weight: "bold", c.title)
    v(0.3em)
    block(width: w, height: ht + 0.6cm, {
      for k in range(5) {
        let y = ht - ht * k / 4
        place(dx: ox, dy: y, line(length: w - ox, stroke: 0.3pt + grey))
        place(dx: 0pt, dy: y - 4pt, text(size: 6pt, fill: luma(100), fmt(top * k / 4)))
      }
      for (i, v) in c.values.enumerate() {
        let bh = ht * v / top
        place(dx: ox + bw * i + bw * 0.15, dy: ht - bh, rect(width: bw * 0.7, height: bh, fill: blue, stroke: none))
        if calc.rem(i, 5) == 0 {
          place(dx: ox + bw * i, dy: ht + 3pt, text(size: 6pt, c.labels.at(i)))
        }
      }
      if c.reference.len() > 1 {
        for i in range(c.reference.len() - 1) {
          place(line(start: (ox + bw * (i + 0.5), ht - ht * c.reference.at(i) / top),
                     end: (ox + bw * (i + 1.5), ht - ht * c.reference.at(i + 1) / top),
                     stroke: 1.2pt + red))
        }
      }
    })
    text(size: 7pt)[#box(width: 8pt, height: 6pt, fill: blue) #c.legend.at(0)
      #if c.reference.len() > 0 [ #h(1em) #box(width: 10pt, height: 1.2pt, fill: red) #c.legend.at(1)]]
  })
}

#let pathway(c) = {
  let w = 17cm
  let ht = 4.6cm
  let n = c.labels.len()
  let cap = if c.cap == none { 0 } else { c.cap }
  let top = calc.max(..c.values, ..c.reference, cap, 0.000001) * 1.08
  let ox = 1.2cm
  let step = (w - ox) / n
  block(breakable: false, {
    text(weight: "bold", c.title)
    v(0.3em)
    block(width: w, height: ht + 0.6cm, {
      for k in range(5) {
        let y = ht - ht * k / 4
        place(dx: ox, dy: y, line(length: w - ox, stroke: 0.3pt + grey))
        place(dx: 0pt, dy: y - 4pt, text(size: 6pt, fill: luma(100), fmt(top * k / 4)))
      }
      for (i, l) in c.labels.enumerate() {
        place(dx: ox + step * i + step * 0.35, dy: ht + 3pt, text(size: 6pt, l))
      }
      if c.cap != none {
        place(dx: ox, dy: ht - ht * cap / top, line(length: w - ox, stroke: (paint: red, thickness: 1pt, dash: "dashed")))
      }
      for (series, paint) in ((c.reference, luma(120)), (c.values, blue)) {
        if series.len() > 1 {
          for i in range(series.len() - 1) {
            place(line(start: (ox + step * (i + 0.5), ht - ht * series.at(i) / top),
                       end: (ox + step * (i + 1.5), ht - ht * series.at(i + 1) / top),
                       stroke: 1.4pt + paint))
          }
        }
        for (i, v) in series.enumerate() {
          place(dx: ox + step * (i + 0.5) - 2pt, dy: ht - ht * v / top - 2pt, circle(radius: 2pt, fill: paint, stroke: none))
        }
      }
    })
    text(size: 7pt)[#box(width: 10pt, height: 1.4pt, fill: blue) #c.legend.at(0) #h(1em)
      #box(width: 10pt, height: 1.4pt, fill: luma(120)) #c.legend.at(1) #h(1em)
      #box(width: 10pt, height: 1pt, fill: red) #c.legend.at(2)]
  })
}

#let hbars(c) = {
  let top = calc.max(..c.values, 0.000001)
  block(breakable: false, {
    text(weight: "bold", c.title)
    v(0.3em)
    grid(columns: (5.2cm, 1fr, 2.2cm), row-gutter: 3pt, column-gutter: 6pt, align: horizon,
      ..c.labels.zip(c.values, c.texts).map(((l, v, t)) => (
        text(size: 7pt, l),
        box(width: 100% * (v / top), height: 7pt, fill: blue),
        align(right, text(size: 7pt, t)),
      )).flatten())
  })
}

#align(center)[
  #v(1.5cm)
  #text(size: 20pt, weight: "bold", d.title)
  #v(0.6em)
  #text(size: 12pt, d.subtitle)
  #v(2cm)
]

#for s in d.sections {
  let body = {
    heading(level: 1, s.title)
    for b in s.blocks {
      if b.kind == "para" { par(b.text); v(0.3em) }
      else if b.kind == "table" { tbl(b); v(0.6em) }
      else if b.kind == "bars" { bars(b); v(0.6em) }
      else if b.kind == "pathway" { pathway(b); v(0.6em) }
      else if b.kind == "hbars" { hbars(b); v(0.6em) }
    }
  }
  if s.landscape { page(flipped: true, body) }
  else {
    if s.pagebreak { pagebreak(weak: true) }
    body
  }
}
"""
