import { describe, expect, it } from 'vitest'

import { filterWords } from './filter'

describe('the chat list filter', () => {
  it('folds case and ё and reads letters and digits as words', () => {
    expect(filterWords('Шахматы-ЁЛКИ, 5А!')).toEqual(['шахматы', 'елки', '5а'])
    expect(filterWords('!!! ...')).toEqual([])
  })
})
