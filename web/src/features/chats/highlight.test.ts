import { describe, expect, it } from 'vitest'

import { excerpt, highlight } from './highlight'

const hits = (text: string, q: string) => highlight(text, q).filter((p) => p.hit).map((p) => p.text)

describe('the words a message search found, marked in the text (issue #17)', () => {
  it('marks Russian word forms of the query words, not other words', () => {
    expect(hits('Контрольная работа в пятницу', 'контрольной')).toEqual(['Контрольная'])
    expect(hits('Все уроки отменены, урок физики завтра', 'урок')).toEqual(['уроки', 'урок'])
    expect(hits('Завтра математика и литература', 'матем')).toEqual(['математика'])
    expect(hits('Ёлка во дворе', 'елки')).toEqual(['Ёлка'])
    expect(hits('Контрольная работа', 'контакт')).toEqual([])
    expect(hits('Сдали контрольными работами', 'контрольная')).toEqual(['контрольными'])
    expect(hits('Кот и кит', 'кто')).toEqual([]) // a short word is a prefix only
  })

  it('keeps the whole text, in order, as text (markup in a message is not markup)', () => {
    const text = '<b>контрольная</b> & <script>alert(1)</script>'
    const parts = highlight(text, 'контрольной')
    expect(parts.map((p) => p.text).join('')).toBe(text)
    expect(parts).toEqual([{ text: '<b>', hit: false }, { text: 'контрольная', hit: true },
                           { text: '</b> & <script>alert(1)</script>', hit: false }])
  })

  it('shows a long text around its first hit, cut at spaces', () => {
    const text = `${'слово '.repeat(60)}контрольная работа в пятницу ${'ещё '.repeat(60)}`
    const parts = excerpt(text, 'контрольной', 100)
    const shown = parts.map((p) => p.text).join('')
    expect(shown.startsWith('…слово')).toBe(true)
    expect(shown.endsWith('…')).toBe(true)
    expect(shown.length).toBeLessThanOrEqual(102)
    expect(parts.filter((p) => p.hit).map((p) => p.text)).toEqual(['контрольная'])
    expect(excerpt('коротко про контрольную', 'контрольной').map((p) => p.text).join('')).toBe('коротко про контрольную')
  })
})
