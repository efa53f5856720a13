"""The 2-AFC columns, answer fields and answer key that 0002 carried over are dropped.

A migration of its own: PostgreSQL refuses to alter a table in the transaction that updated its rows.
"""

import protocols
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('experiments', '0002_protocol_plugins'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='response',
            name='choice',
        ),
        migrations.RemoveField(
            model_name='response',
            name='clicks',
        ),
        migrations.RemoveField(
            model_name='response',
            name='confidence',
        ),
        migrations.RemoveField(
            model_name='response',
            name='text',
        ),
        migrations.RemoveField(
            model_name='sessiontrial',
            name='correct_choice',
        ),
        migrations.RemoveField(
            model_name='study',
            name='difficulty',
        ),
        migrations.RemoveField(
            model_name='study',
            name='min_catch_correct',
        ),
        migrations.RemoveField(
            model_name='study',
            name='min_position_count',
        ),
        migrations.RemoveField(
            model_name='study',
            name='n_practice_obvious',
        ),
        migrations.RemoveField(
            model_name='study',
            name='practice_less_obvious_difficulty',
        ),
        migrations.RemoveField(
            model_name='study',
            name='prompt',
        ),
        migrations.RemoveField(
            model_name='study',
            name='references_per_side',
        ),
        migrations.AlterField(
            model_name='sessiontrial',
            name='layout',
            field=models.JSONField(help_text='What the protocol shows where: image ids in display order.'),
        ),
        migrations.AlterField(
            model_name='study',
            name='condition',
            field=models.CharField(choices=protocols.condition_choices, default='natural', max_length=20),
        ),
        migrations.AlterField(
            model_name='study',
            name='lock_ms',
            field=models.PositiveIntegerField(default=1500, help_text='Answers locked after onset.'),
        ),
        migrations.AlterField(
            model_name='study',
            name='protocol',
            field=models.CharField(choices=protocols.protocol_choices, default='2afc', max_length=40),
        ),
        migrations.AlterField(
            model_name='trial',
            name='difficulty',
            field=models.CharField(blank=True, help_text="The protocol's name for where it came from.", max_length=20),
        ),
        migrations.AlterField(
            model_name='trialimage',
            name='role',
            field=models.CharField(max_length=20),
        ),
    ]
