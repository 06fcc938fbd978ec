/**
 * The words a message search matched, marked in the message's text (issue #17). The API matches each word of
 * the query as the start of a word or of its Russian stem ("контрольной" finds "контрольная", "уроки" finds
 * "урок"); the client has no stemmer, so a word of the text is marked when it begins with the query word, or
 * shares with it all but a Russian ending (at most three letters, and at least 70% and three letters kept). The text stays text:
 * the parts are rendered as text nodes and <mark>s, never as HTML.
 */

export interface Part {
  text: string
  hit: boolean
}

const WORD = /[\p{L}\p{N}]+/gu

function fold(word: string): string {
  return word.toLocaleLowerCase('ru').replaceAll('ё', 'е')
}

/** The query's words, folded (lower case, ё as е), the way the API reads them. */
export function queryWords(q: string): string[] {
  return [...q.matchAll(WORD)].map((m) => fold(m[0]))
}

function commonPrefix(a: string, b: string): number {
  let n = 0
  while (n < a.length && n < b.length && a[n] === b[n]) n++
  return n
}

/** Whether a word of the text is one the query word finds. */
export function matches(word: string, queryWord: string): boolean {
  const w = fold(word)
  if (w.startsWith(queryWord)) return true
  const stem = Math.max(3, queryWord.length - 3, Math.ceil(queryWord.length * 0.7))
  return queryWord.length > 3 && commonPrefix(w, queryWord) >= stem
}

/** The text cut into parts, the words the query finds marked as hits. */
export function highlight(text: string, q: string): Part[] {
  const words = queryWords(q)
  const parts: Part[] = []
  let at = 0
  const push = (piece: string, hit: boolean) => {
    if (!piece) return
    const last = parts.at(-1)
    if (last && last.hit === hit && !hit) last.text += piece
    else parts.push({ text: piece, hit })
  }
  for (const m of text.matchAll(WORD)) {
    const hit = words.some((qw) => matches(m[0], qw))
    if (!hit) continue
    push(text.slice(at, m.index), false)
    push(m[0], true)
    at = m.index + m[0].length
  }
  push(text.slice(at), false)
  return parts
}

/**
 * A long text's piece around its first hit, at most about `max` characters, cut at spaces, with "…" where it
 * was cut; a short one whole.
 */
export function excerpt(text: string, q: string, max = 180): Part[] {
  const flat = text.replace(/\s+/g, ' ').trim()
  if (flat.length <= max) return highlight(flat, q)
  const parts = highlight(flat, q)
  let first = 0
  for (const p of parts) {
    if (p.hit) break
    first += p.text.length
  }
  let start = Math.max(0, first - Math.floor(max / 3))
  if (start > 0) {
    const space = flat.indexOf(' ', start)
    start = space >= 0 && space < first ? space + 1 : start
  }
  let end = Math.min(flat.length, start + max)
  if (end < flat.length) {
    const space = flat.lastIndexOf(' ', end)
    end = space > first ? space : end
  }
  const piece = (start > 0 ? '…' : '') + flat.slice(start, end) + (end < flat.length ? '…' : '')
  return highlight(piece, q)
}
