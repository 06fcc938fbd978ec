import { describe, expect, it } from 'vitest'

import { filterWords, nameMatches } from './filter'

describe('the chat list filter', () => {
  it('folds case and ё and reads letters and digits as words', () => {
    expect(filterWords('Шахматы-ЁЛКИ, 5А!')).toEqual(['шахматы', 'елки', '5а'])
    expect(filterWords('!!! ...')).toEqual([])
  })

  it('matches when every word typed starts a word of the name', () => {
    expect(nameMatches('Шахматный кружок ЁЛКИ', 'шахм елк')).toBe(true)
    expect(nameMatches('Иванова Мария', 'мар')).toBe(true)
    expect(nameMatches('Шахматный кружок', 'ужок')).toBe(false)
    expect(nameMatches('Шахматный кружок', 'шахм шашки')).toBe(false)
  })
})
