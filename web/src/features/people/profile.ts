import type { Schemas } from '@/api/client'

export type ProfileInput = Schemas['ProfileInput']
export type Person = Schemas['PersonView']

/** "Иванова Мария Петровна" — a person's full name as the API gives its parts. */
export function fullName(p: Partial<Person> | null | undefined): string {
  return [p?.last_name, p?.first_name, p?.patronymic].filter(Boolean).join(' ')
}
